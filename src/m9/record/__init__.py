"""Recording points and sweeps: the journal (the canonical record, on disk), the MLflow store (the only mlflow
import), provenance, redaction of credentials, and the sweep's own record."""
