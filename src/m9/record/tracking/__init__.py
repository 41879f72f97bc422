"""MLflow: the only package that imports mlflow (and only inside its functions, so that importing it is free).

A sweep is a parent run (``kind=sweep``), created in the launching process before any job starts; each point is a
child run (``kind=point``, nested through ``mlflow.parentRunId``) holding the journal entry: params are the
flattened resolved config plus ``resolved.*``, metrics the measurements and predictions, tags the outcome and
provenance. A single point without a sweep is a top-level point run. The store and experiment are created once, up
front: parallel jobs on a fresh sqlite file race on schema creation.

    store    ``Store``: one store and experiment as a process talks to it (client, experiment, UI link, errors)
    runs     sweep and point runs: open, finish, kill, reap what a killed process left RUNNING
    live     a running point's step series
    read     sweeps and points read back as records
"""

from m9.record.tracking.live import LiveSeries
from m9.record.tracking.read import find_point, find_sweep, load_points
from m9.record.tracking.runs import (
    end_sweep_run,
    finish_point,
    incomplete_sweeps,
    job_run,
    kill_point,
    log_artifacts,
    point_run,
    reap_stale_sweeps,
    record_point,
    set_pending,
    start_point,
    start_sweep_run,
)
from m9.record.tracking.store import DEFAULT_DB, Store, resolve_uri

__all__ = ["DEFAULT_DB", "LiveSeries", "Store", "end_sweep_run", "find_point", "find_sweep", "finish_point",
           "incomplete_sweeps", "job_run", "kill_point", "load_points", "log_artifacts", "point_run",
           "reap_stale_sweeps", "record_point", "resolve_uri", "set_pending", "start_point", "start_sweep_run"]
