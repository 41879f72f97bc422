"""Sweeps and points read back from the store, as the journal's types."""

from __future__ import annotations

import json
from typing import Any, Optional

from m9.outcome.outcome import Outcome
from m9.outcome.status import FailureKind, Status
from m9.record.journal import PointRecord
from m9.record.tracking.store import Store, param_value


def find_sweep(store: Store, ref: Optional[str] = None) -> Optional[dict[str, Any]]:
    """The parent run of a sweep by sweep id or run id (None: the latest sweep), as a dict; None if not found."""
    mlflow, experiment_id = store.client, store.experiment_id()
    if experiment_id is None:
        return None
    if ref and "'" in ref:
        return None  # no sweep id or run id has a quote; keep it out of the search filter
    query = "tags.kind = 'sweep'" + (f" and tags.sweep_id = '{ref}'" if ref else "")
    runs = mlflow.search_runs([experiment_id], query, order_by=["attributes.start_time DESC"], max_results=1)
    if not runs and ref:
        try:
            runs = [mlflow.get_run(ref)]
        except Exception:  # noqa: BLE001 - not a run id either
            return None
    if not runs or runs[0].data.tags.get("kind") != "sweep":
        return None
    run = runs[0]
    return {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id, "status": run.info.status,
            "tags": dict(run.data.tags), "metrics": dict(run.data.metrics)}


def load_points(store: Store, parent: dict[str, Any]) -> list[PointRecord]:
    """The records of a sweep's points (``parent`` from ``find_sweep``), rebuilt from their runs."""
    runs = store.client.search_runs([parent["experiment_id"]], f"tags.mlflow.parentRunId = '{parent['run_id']}'",
                                   max_results=5000)
    return sorted((point_record(run) for run in runs if run.data.tags.get("status")), key=lambda r: r.job_num)


def find_point(store: Store, key: str) -> Optional[PointRecord]:
    """The record of the newest finished point run with this ``point_key``, or None."""
    experiment_id = store.experiment_id()
    if experiment_id is None or not key.isalnum():
        return None
    runs = store.client.search_runs([experiment_id], f"tags.kind = 'point' and tags.point_key = '{key}'",
                                   order_by=["attributes.start_time DESC"], max_results=50)
    done = [r for r in runs if r.info.status in ("FINISHED", "FAILED") and r.data.tags.get("status")]
    return point_record(done[0]) if done else None  # a RUNNING or KILLED run has no outcome


SERIES = ("iters/", "rounds/", "repeat_")
"""Step series written beside a point's metrics (live progress, each repeat): not part of its outcome."""


def _json(tags: dict[str, str], key: str, default: Any) -> Any:
    return json.loads(tags[key]) if tags.get(key) else default


def point_record(run) -> PointRecord:
    """A finished point run as the point record its journal holds."""
    t = run.data.tags
    kind = t.get("failure_kind")
    runtime = _json(t, "runtime_json", {k: t[k] for k in ("backend", "device_kind", "device_count") if t.get(k)})
    return PointRecord(
        sweep_id=t.get("sweep_id", ""),
        job_num=int(t.get("job_num", 0)),
        overrides=tuple(_json(t, "overrides_json", t.get("overrides", "").split())),
        output_dir=t.get("output_dir", ""),
        point_key=t.get("point_key", ""),
        outcome=Outcome(
            status=Status(t["status"]),
            failure_kind=FailureKind(kind) if kind else None,
            signature=t.get("signature", ""),
            metrics={k: v for k, v in run.data.metrics.items() if not k.startswith(SERIES)},
            notes=tuple(_json(t, "notes_json", [])),
            runtime=runtime,
            repeats=tuple(_json(t, "repeats_json", [])),
        ),
        params={k: param_value(k, v) for k, v in run.data.params.items()},
        run_id=run.info.run_id,
        reused_from=_json(t, "reused_from_json", None),
    )
