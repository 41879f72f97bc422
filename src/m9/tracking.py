"""MLflow: the only module that imports mlflow.

One MLflow run per point: params are the flattened resolved config (plus the values m9 derived, under
``resolved.*``), metrics are the trial's measurements and the plan's predictions, tags carry the outcome and where
the point came from. The store and experiment are created once, in the launching process, before any job starts:
parallel jobs on a fresh sqlite file race on schema creation.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

from m9.config import M9Config, TrackingConfig, flatten
from m9.outcome import Outcome
from m9.plan import Plan
from m9.provenance import JobInfo, versions

DEFAULT_DB = Path("outputs") / "mlflow.db"
_PARAM_MAX = 6000  # MLflow's param value cap (chars)


def resolve_uri(cfg: TrackingConfig) -> str:
    """``tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else a sqlite store at ``outputs/mlflow.db`` under the cwd."""
    if cfg.uri:
        return cfg.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(Path.cwd() / DEFAULT_DB).resolve()}"


def _artifact_location(uri: str) -> Optional[str]:
    # A local sqlite store keeps artifacts beside the database rather than in whatever the cwd is; a tracking
    # server decides for itself.
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        db = Path(uri[len("sqlite:///"):])
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


def init_store(cfg: TrackingConfig) -> Optional[str]:
    """Create the store's schema and the experiment if missing; returns the experiment id (None when disabled)."""
    if cfg.backend == "none":
        return None
    from mlflow.tracking import MlflowClient

    uri = resolve_uri(cfg)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(cfg.experiment)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(cfg.experiment, artifact_location=_artifact_location(uri))


def _param_value(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text[:_PARAM_MAX]


def record_point(
    cfg: M9Config, plan: Plan, outcome: Outcome, job: JobInfo, artifacts: list[Path]
) -> Optional[str]:
    """Log one point as one MLflow run; returns its run id (None when tracking is off)."""
    if cfg.tracking.backend == "none":
        return None
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=resolve_uri(cfg.tracking))
    experiment_id = init_store(cfg.tracking)
    tags = {
        "mlflow.runName": job.run_name,
        "status": outcome.status,
        "failure_kind": outcome.failure_kind or "",
        "signature": outcome.signature[:5000],
        "notes": "; ".join(outcome.notes)[:5000],
        "sweep_id": job.sweep_id,
        "job_num": str(job.job_num),
        "overrides": job.override_string,
        "output_dir": str(job.output_dir),
        **versions(),
        "backend": str(outcome.runtime.get("backend", "")),
        "device_kind": str(outcome.runtime.get("device_kind", "")),
        "device_count": str(outcome.runtime.get("device_count", "")),
        "prediction_mismatch": str(any("differs from predicted" in n for n in outcome.notes)).lower(),
    }
    run = client.create_run(experiment_id, tags={k: v for k, v in tags.items() if v != ""})
    run_id = run.info.run_id
    params = {**flatten(cfg), **_resolved(plan)}
    param_list = [Param(k, _param_value(v)) for k, v in sorted(params.items())]
    now_ms = int(time.time() * 1000)
    metric_list = [Metric(k, float(v), now_ms, 0) for k, v in sorted(outcome.metrics.items()) if v is not None]
    for start in range(0, len(param_list), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run_id, params=param_list[start : start + 100])
    for start in range(0, len(metric_list), 1000):
        client.log_batch(run_id, metrics=metric_list[start : start + 1000])
    for path in artifacts:
        if path.exists():
            client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, status="FINISHED" if outcome.status != "fail" else "FAILED")
    return run_id


def _resolved(plan: Plan) -> dict[str, Any]:
    return {
        "resolved.num_prompts": plan.num_prompts,
        "resolved.num_seqs": plan.num_seqs,
        "resolved.max_pages": plan.max_pages,
        "resolved.max_pages_auto": plan.max_pages_auto,
        "resolved.max_tokens_per_round": plan.max_tokens_per_round,
        "resolved.max_prefill_size": plan.max_prefill_size,
    }
