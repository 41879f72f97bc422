"""MLflow: the only module that imports mlflow.

A sweep is a parent run (``kind=sweep``), created in the launching process before any job starts; each point is a
child run (``kind=point``, nested through ``mlflow.parentRunId``) holding the journal entry: params are the
flattened resolved config plus ``resolved.*``, metrics the measurements and predictions, tags the outcome and
provenance. A single point without a sweep is a top-level point run. The store and experiment are created once, up
front: parallel jobs on a fresh sqlite file race on schema creation.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

from m9.config import TrackingConfig
from m9.provenance import process_gone, process_identity, versions

DEFAULT_DB = Path("outputs") / "mlflow.db"
_PARAM_MAX = 6000  # MLflow's cap on a param value (chars)
_TAG_MAX = 5000


def resolve_uri(cfg: TrackingConfig) -> str:
    """``tracking.uri``, else ``$MLFLOW_TRACKING_URI``, else a sqlite store at ``outputs/mlflow.db`` under the cwd."""
    if cfg.uri:
        return cfg.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(Path.cwd() / DEFAULT_DB).resolve()}"


def _artifact_location(uri: str) -> Optional[str]:
    # A local sqlite store keeps artifacts beside the database, not in whatever the cwd is; a server decides itself.
    if urlparse(uri).scheme == "sqlite":
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
    return None


def _client(cfg: TrackingConfig):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=resolve_uri(cfg))


def init_store(cfg: TrackingConfig) -> Optional[str]:
    """Create the store's schema and the experiment if missing; returns the experiment id (None when disabled)."""
    if cfg.backend == "none":
        return None
    uri = resolve_uri(cfg)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    client = _client(cfg)
    experiment = client.get_experiment_by_name(cfg.experiment)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(cfg.experiment, artifact_location=_artifact_location(uri))


def _text(value: Any, cap: int) -> str:
    return ("null" if value is None else str(value))[:cap]


def start_sweep_run(cfg: TrackingConfig, sweep_id: str, command: str, grid: Optional[list[list[str]]],
                    output_dir: Path, n_points: Optional[int] = None, mode: str = "grid") -> str:
    """Open the sweep's parent run; returns its id. It names the launching process, so that a later sweep can tell
    a sweep that is still running from one whose process was killed (see :func:`reap_stale_sweeps`)."""
    experiment_id = init_store(cfg)
    tags = {"mlflow.runName": f"sweep {sweep_id}", "kind": "sweep", "sweep_id": sweep_id, "command": command,
            "n_points": str(n_points) if n_points else "", "output_dir": str(output_dir), "mode": mode,
            "launcher_process": process_identity(), **versions()}
    client = _client(cfg)
    run = client.create_run(experiment_id, tags={k: _text(v, _TAG_MAX) for k, v in tags.items() if v != ""})
    if grid:
        client.log_text(run.info.run_id, json.dumps(grid, indent=1), "grid.json")
    return run.info.run_id


def end_sweep_run(cfg: TrackingConfig, run_id: str, status: str, summary: dict[str, Any],
                  artifacts: list[Path] = ()) -> None:
    """Close the parent run with ``FINISHED``/``FAILED``/``KILLED`` and the sweep's summary."""
    client = _client(cfg)
    try:
        for key, value in summary.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                client.log_metric(run_id, key, float(value))
            elif value is not None:
                client.set_tag(run_id, key, _text(value, _TAG_MAX))
        log_artifacts(cfg, run_id, artifacts)
    finally:
        client.set_terminated(run_id, status=status)


def log_artifacts(cfg: TrackingConfig, run_id: str, paths: list[Path], base: Optional[Path] = None) -> None:
    """Attach files that exist to a run; a file in a subfolder of ``base`` keeps that folder (``repeat_1/...``)."""
    client = _client(cfg)
    for path in map(Path, paths):
        if path.exists():
            folder = path.parent.relative_to(base).as_posix() if base and path.parent.is_relative_to(base) else "."
            client.log_artifact(run_id, str(path), artifact_path=None if folder == "." else folder)


def record_point(cfg: TrackingConfig, entry: dict[str, Any], artifacts: list[Path],
                 parent_run_id: Optional[str] = None, base: Optional[Path] = None) -> Optional[str]:
    """Log one point's journal entry as one run; returns its run id (None when tracking is off)."""
    if cfg.backend == "none":
        return None
    from mlflow.entities import Metric, Param

    client = _client(cfg)
    outcome = entry["outcome"]
    runtime = outcome.get("runtime", {})
    tags = {
        "mlflow.runName": " ".join(entry["overrides"]) or "default",
        "kind": "point",
        "status": outcome["status"],
        "failure_kind": outcome["failure_kind"] or "",
        "signature": outcome["signature"],
        "notes": "; ".join(outcome["notes"]),
        "sweep_id": entry["sweep_id"],
        "job_num": str(entry["job_num"]),
        "overrides": " ".join(entry["overrides"]),
        "overrides_json": json.dumps(entry["overrides"]),  # exact, for reading the entry back
        "notes_json": json.dumps(outcome["notes"]) if outcome["notes"] else "",
        "output_dir": entry["output_dir"],
        "point_key": entry.get("point_key", ""),
        **versions(),
        "backend": str(runtime.get("backend", "")),
        "device_kind": str(runtime.get("device_kind", "")),
        "device_count": str(runtime.get("device_count", "")),
        "prediction_mismatch": str(any("differs from predicted" in n for n in outcome["notes"])).lower(),
    }
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run = client.create_run(init_store(cfg), tags={k: _text(v, _TAG_MAX) for k, v in tags.items() if v != ""})
    run_id = run.info.run_id
    params = [Param(k, _text(v, _PARAM_MAX)) for k, v in sorted(entry["params"].items())]
    now_ms = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now_ms, 0) for k, v in sorted(outcome["metrics"].items()) if v is not None]
    metrics += [Metric(f"repeat_{k}", float(v), now_ms, step)  # each repeat as a step: its spread in the UI's charts
                for step, trial in enumerate(outcome.get("repeats", ())) for k, v in sorted(trial.items())
                if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run_id, params=params[start : start + 100])
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
    log_artifacts(cfg, run_id, artifacts, base)
    client.set_terminated(run_id, status="FAILED" if outcome["status"] == "fail" else "FINISHED")
    return run_id


def _parse(value: str) -> Any:
    if value == "null":
        return None
    if value in ("True", "False"):
        return value == "True"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def find_sweep(cfg: TrackingConfig, ref: Optional[str] = None) -> Optional[dict[str, Any]]:
    """The parent run of a sweep by sweep id or run id (None: the latest sweep), as a dict; None if not found."""
    client = _client(cfg)
    experiment = client.get_experiment_by_name(cfg.experiment)
    if experiment is None:
        return None
    if ref and "'" in ref:
        return None  # no sweep id or run id has a quote; keep it out of the search filter
    query = "tags.kind = 'sweep'" + (f" and tags.sweep_id = '{ref}'" if ref else "")
    runs = client.search_runs([experiment.experiment_id], query, order_by=["attributes.start_time DESC"],
                              max_results=1)
    if not runs and ref:
        try:
            runs = [client.get_run(ref)]
        except Exception:  # noqa: BLE001 - not a run id either
            return None
    if not runs or runs[0].data.tags.get("kind") != "sweep":
        return None
    run = runs[0]
    return {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id, "status": run.info.status,
            "tags": dict(run.data.tags), "metrics": dict(run.data.metrics)}


def load_points(cfg: TrackingConfig, parent: dict[str, Any]) -> list[dict[str, Any]]:
    """The journal entries of a sweep's points (``parent`` from ``find_sweep``), rebuilt from their runs."""
    client = _client(cfg)
    runs = client.search_runs([parent["experiment_id"]], f"tags.mlflow.parentRunId = '{parent['run_id']}'",
                              max_results=5000)
    return sorted((_entry(run) for run in runs), key=lambda e: e["job_num"])


def find_point(cfg: TrackingConfig, key: str) -> Optional[dict[str, Any]]:
    """The journal entry of the newest finished point run with this ``point_key``, or None."""
    client = _client(cfg)
    experiment = client.get_experiment_by_name(cfg.experiment)
    if experiment is None or not key.isalnum():
        return None
    runs = client.search_runs([experiment.experiment_id],
                              f"tags.kind = 'point' and tags.point_key = '{key}' and attributes.status != 'RUNNING'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return _entry(runs[0]) if runs else None


def reap_stale_sweeps(cfg: TrackingConfig) -> list[dict[str, str]]:
    """Close as KILLED every sweep run (and its running point runs) left RUNNING by a launching process of this host
    that no longer exists: a SIGKILLed sweep cannot close its own record. Returns the reaped runs' tags."""
    client = _client(cfg)
    experiment = client.get_experiment_by_name(cfg.experiment)
    if experiment is None:
        return []
    reaped = []
    for run in client.search_runs([experiment.experiment_id],
                                  "tags.kind = 'sweep' and attributes.status = 'RUNNING'", max_results=1000):
        owner = run.data.tags.get("launcher_process", "")
        if not owner or not process_gone(owner):
            continue
        run_id = run.info.run_id
        for child in client.search_runs([experiment.experiment_id],
                                        f"tags.mlflow.parentRunId = '{run_id}' and attributes.status = 'RUNNING'"):
            client.set_terminated(child.info.run_id, status="KILLED")
        client.set_tag(run_id, "ended_by", f"closed by a later sweep: its launching process {owner} was gone")
        client.set_terminated(run_id, status="KILLED")
        reaped.append(dict(run.data.tags))
    return reaped


def _entry(run) -> dict[str, Any]:
    """A point run as a journal entry."""
    t, params = run.data.tags, {k: _parse(v) for k, v in run.data.params.items()}
    return {
        "sweep_id": t.get("sweep_id", ""),
        "job_num": int(t.get("job_num", 0)),
        "overrides": json.loads(t["overrides_json"]) if "overrides_json" in t else t.get("overrides", "").split(),
        "run_id": run.info.run_id,
        "output_dir": t.get("output_dir", ""),
        "point_key": t.get("point_key", ""),
        "max_seqs": params.get("engine.max_seqs"),
        "max_pages": params.get("resolved.max_pages"),
        "prompts": params.get("resolved.num_prompts"),
        "outcome": {
            "status": t.get("status", ""),
            "failure_kind": t.get("failure_kind") or None,
            "signature": t.get("signature", ""),
            "metrics": dict(run.data.metrics),
            "notes": json.loads(t.get("notes_json", "[]")),
            "runtime": {k: t.get(k, "") for k in ("backend", "device_kind", "device_count")},
        },
        "params": params,
    }
