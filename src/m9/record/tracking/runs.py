"""Sweep and point runs: opened before their work starts (so the UI shows them while they run), finished with
their outcome, killed when their work is cut off, and reaped when the process that opened them died."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

from m9.outcome.status import Status
from m9.record.journal import PointRecord
from m9.record.provenance import JobInfo, process_gone, process_identity, short_name, versions
from m9.record.tracking.store import PARAM_MAX, TAG_MAX, Store, text


def _tags(values: dict[str, Any]):
    return {k: text(v, TAG_MAX) for k, v in values.items() if v != ""}


def start_sweep_run(store: Store, sweep_id: str, command: str, grid: Optional[list[list[str]]],
                    output_dir: Path, n_points: Optional[int] = None, mode: str = "grid") -> str:
    """Open the sweep's parent run; returns its id. It names the launching process, so that a later sweep can tell
    a sweep that is still running from one whose process was killed (see :func:`reap_stale_sweeps`)."""
    experiment_id = store.init()
    tags = {"mlflow.runName": sweep_name(command, mode, sweep_id), "kind": "sweep", "sweep_id": sweep_id,
            "command": command,
            "n_points": str(n_points) if n_points else "", "output_dir": str(output_dir), "mode": mode,
            "launcher_process": process_identity(), **versions()}
    run = store.client.create_run(experiment_id, tags=_tags(tags))
    if grid:
        store.client.log_text(run.info.run_id, json.dumps(grid, indent=1), "grid.json")
    return run.info.run_id


def end_sweep_run(store: Store, run_id: str, status: str, summary: dict[str, Any],
                  artifacts: list[Path] = ()) -> None:
    """Close the parent run with ``FINISHED``/``FAILED``/``KILLED`` and the sweep's summary."""
    mlflow = store.client
    try:
        for key, value in summary.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                mlflow.log_metric(run_id, key, float(value))
            elif value is not None:
                mlflow.set_tag(run_id, key, text(value, TAG_MAX))
        log_artifacts(store, run_id, artifacts)
    finally:
        if status != "FINISHED":  # points cut off with their sweep must not stay RUNNING either
            _kill_running_children(mlflow, mlflow.get_run(run_id).info.experiment_id, run_id)
        mlflow.set_terminated(run_id, status=status)


def sweep_name(command: str, mode: str, sweep_id: str) -> str:
    """The sweep's name in the UI's table: its mode and what it sweeps (``grid max_seqs=2,4,8``), then its id."""
    swept = [a.removeprefix("hydra.sweeper.") for a in command.split()[1:] if not a.startswith("-") and "=" in a
             and (any(c in a.split("=", 1)[1] for c in ",(") or "experiment" in a or a.startswith("hydra.sweeper."))]
    return " ".join(filter(None, [mode, short_name(swept), f"({sweep_id})"]))


def _kill_running_children(mlflow: Any, experiment_id: str, run_id: str) -> None:
    for child in mlflow.search_runs([experiment_id],
                                    f"tags.mlflow.parentRunId = '{run_id}' and attributes.status = 'RUNNING'"):
        mlflow.set_terminated(child.info.run_id, status="KILLED")


def log_artifacts(store: Store, run_id: str, paths: list[Path], base: Optional[Path] = None) -> None:
    """Attach files that exist to a run; a file in a subfolder of ``base`` keeps that folder (``repeat_1/...``)."""
    for path in map(Path, paths):
        if path.exists():
            folder = path.parent.relative_to(base).as_posix() if base and path.parent.is_relative_to(base) else "."
            store.client.log_artifact(run_id, str(path), artifact_path=None if folder == "." else folder)


def start_point(store: Store, job: JobInfo, params: dict[str, Any]) -> Optional[str]:
    """Create a point's run, RUNNING, with its identity tags and its params, before its trial starts (so the UI
    shows it while it runs); returns its id (None when tracking is off)."""
    if not store.enabled:
        return None
    from mlflow.entities import Param

    tags = {
        "mlflow.runName": job.run_name,
        "kind": "point",
        "sweep_id": job.sweep_id,
        "job_num": str(job.job_num),
        "overrides": job.override_string,
        "overrides_json": json.dumps(list(job.overrides)),  # exact, for reading the entry back
        "output_dir": str(job.output_dir),
        "point_key": job.point_key,
        **versions(),
    }
    if job.parent_run_id:
        tags["mlflow.parentRunId"] = job.parent_run_id
        earlier = job_run(store, job)
        if earlier is not None:  # the same job again (requeued after a preemption): one point, one run
            store.client.update_run(earlier, status="RUNNING")
            return earlier
    run = store.client.create_run(store.init(), tags=_tags(tags))
    entries = [Param(k, text(v, PARAM_MAX)) for k, v in sorted(params.items())]
    for start in range(0, len(entries), 100):  # MLflow takes at most 100 params per batch
        store.client.log_batch(run.info.run_id, params=entries[start : start + 100])
    return run.info.run_id


def finish_point(store: Store, run_id: str, record: PointRecord, artifacts: list[Path],
                 base: Optional[Path] = None) -> str:
    """Land a point's outcome on its run: status and failure tags, metrics, each repeat as steps, artifacts; then
    close it (FAILED for a failed point, else FINISHED). The tags hold what ``read`` needs to rebuild the record."""
    from mlflow.entities import Metric, RunTag

    outcome = record.outcome
    tags = {
        "status": outcome.status.value,
        "failure_kind": outcome.failure_kind or "",
        "signature": outcome.signature,
        "notes": "; ".join(outcome.notes),
        "notes_json": json.dumps(outcome.notes) if outcome.notes else "",
        "backend": str(outcome.runtime.get("backend", "")),
        "device_kind": str(outcome.runtime.get("device_kind", "")),
        "device_count": str(outcome.runtime.get("device_count", "")),
        "mesh": str(outcome.runtime.get("mesh", "")),
        "runtime_json": json.dumps(outcome.runtime) if outcome.runtime else "",
        "repeats_json": json.dumps(outcome.repeats) if outcome.repeats else "",
        "reused_from_json": json.dumps(record.reused_from) if record.reused_from else "",
        "prediction_mismatch": str(any("differs from predicted" in n for n in outcome.notes)).lower(),
    }
    now_ms = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now_ms, 0) for k, v in sorted(outcome.metrics.items()) if v is not None]
    metrics += [Metric(f"repeat_{k}", float(v), now_ms, step)  # each repeat as a step: its spread in the UI's charts
                for step, trial in enumerate(outcome.repeats) for k, v in sorted(trial.items())
                if isinstance(v, (int, float)) and not isinstance(v, bool)]
    store.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in _tags(tags).items()])
    for start in range(0, len(metrics), 1000):
        store.client.log_batch(run_id, metrics=metrics[start : start + 1000])
    log_artifacts(store, run_id, artifacts, base)
    store.client.set_terminated(run_id, status="FAILED" if outcome.status == Status.FAIL else "FINISHED")
    return run_id


def record_point(store: Store, job: JobInfo, record: PointRecord, artifacts: list[Path],
                 base: Optional[Path] = None) -> Optional[str]:
    """A point that had no live phase (rejected, planned-then-recorded): its run in one go."""
    run_id = start_point(store, job, dict(record.params))
    return finish_point(store, run_id, record, artifacts, base) if run_id else None


def job_run(store: Store, job: JobInfo) -> Optional[str]:
    """The run a sweep's job opened for its point and never finished (its process was killed, or the job was
    requeued), or None."""
    if not job.parent_run_id:
        return None
    runs = store.client.search_runs(
        [store.init()], f"tags.mlflow.parentRunId = '{job.parent_run_id}' and tags.job_num = '{job.job_num}'",
        max_results=10)
    unfinished = [r for r in runs if "status" not in r.data.tags]  # a finished point carries its status tag
    return unfinished[0].info.run_id if unfinished else None


def point_run(store: Store, sweep_id: str, job_num: int, key: str) -> Optional[tuple[str, bool]]:
    """A sweep's point in the store: its run id and whether it is finished (holds its outcome), or None."""
    if "'" in sweep_id or not key.isalnum():
        return None
    runs = store.client.search_runs(
        [store.init()], f"tags.kind = 'point' and tags.sweep_id = '{sweep_id}' and tags.job_num = '{job_num}'",
        max_results=10)
    mine = [r for r in runs if r.data.tags.get("point_key") == key]
    finished = [r for r in mine if "status" in r.data.tags]
    best = (finished or mine or [None])[0]
    return None if best is None else (best.info.run_id, bool(finished))


def kill_point(store: Store, run_id: str) -> None:
    """Close a point's run as KILLED: its trial was interrupted and left no outcome."""
    store.client.set_terminated(run_id, status="KILLED")


def incomplete_sweeps(store: Store) -> list[tuple[str, Path]]:
    """Sweeps that ended with points the store did not take (``store_pending > 0``): run id and folder."""
    experiment_id = store.experiment_id()
    if experiment_id is None:
        return []
    runs = store.client.search_runs([experiment_id], "tags.kind = 'sweep' and metrics.store_pending > 0",
                                   max_results=100)
    return [(r.info.run_id, Path(r.data.tags.get("output_dir", ""))) for r in runs]


def set_pending(store: Store, run_id: str, n: int) -> None:
    """How many of a sweep's points the store still lacks."""
    store.client.log_metric(run_id, "store_pending", float(n))


def reap_stale_sweeps(store: Store) -> list[dict[str, str]]:
    """Close as KILLED every sweep run (and its running point runs) left RUNNING by a launching process of this host
    that no longer exists: a SIGKILLed sweep cannot close its own record. Returns the reaped runs' tags."""
    mlflow, experiment_id = store.client, store.experiment_id()
    if experiment_id is None:
        return []
    reaped = []
    for run in mlflow.search_runs([experiment_id],
                                  "tags.kind = 'sweep' and attributes.status = 'RUNNING'", max_results=1000):
        owner = run.data.tags.get("launcher_process", "")
        if not owner or not process_gone(owner):
            continue
        run_id = run.info.run_id
        _kill_running_children(mlflow, experiment_id, run_id)
        mlflow.set_tag(run_id, "ended_by", f"closed by a later sweep: its launching process {owner} was gone")
        mlflow.set_terminated(run_id, status="KILLED")
        reaped.append({**run.data.tags, "run_id": run_id})
    return reaped
