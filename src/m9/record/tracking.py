"""MLflow: the only module that imports mlflow.

A sweep is a parent run (``kind=sweep``), created in the launching process before any job starts; each point is a
child run (``kind=point``, nested through ``mlflow.parentRunId``) holding the journal entry: params are the
flattened resolved config plus ``resolved.*``, metrics the measurements and predictions, tags the outcome and
provenance. A single point without a sweep is a top-level point run. The store and experiment are created once, up
front: parallel jobs on a fresh sqlite file race on schema creation.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

from m9.config import TrackingConfig
from m9.record.journal import PointRecord
from m9.outcome.outcome import Outcome, Status
from m9.record.probe import check_reachable
from m9.record.provenance import JobInfo, process_gone, process_identity, versions
from m9.record.redact import redact

DEFAULT_DB = Path("outputs") / "mlflow.db"
_PARAM_MAX = 6000  # MLflow's cap on a param value (chars)
_TAG_MAX = 5000
_EXPERIMENT_KIND = "mlflow.experimentKind"
# MLflow retries a failing HTTP request 7 times with exponential backoff (minutes) by default: a store that dies
# mid-sweep would stall every point that long. Users' own settings win.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


def store_error(cfg: TrackingConfig, exc: BaseException) -> str:
    """One line for a store that could not be opened, credentials masked."""
    return redact(f"tracking store {resolve_uri(cfg)}: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")


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
    return _client_for(resolve_uri(cfg))


@functools.lru_cache(maxsize=8)
def _client_for(uri: str):
    # One client per store and process: a sqlite store's client opens its database engine once, not per call.
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


_EXPERIMENT_IDS: dict[tuple[str, str], str] = {}


def init_store(cfg: TrackingConfig) -> Optional[str]:
    """Create the store's schema and the experiment if missing; returns the experiment id (None when disabled).
    Looked up once per process and store."""
    if cfg.backend == "none":
        return None
    uri = resolve_uri(cfg)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    if (uri, cfg.experiment) not in _EXPERIMENT_IDS:
        check_reachable(uri)
    experiment_id = _experiment_id(cfg)
    if experiment_id is None:  # MLflow 3's UI opens an experiment on its GenAI overview unless it holds model runs
        experiment_id = _client(cfg).create_experiment(cfg.experiment, artifact_location=_artifact_location(uri),
                                                       tags={_EXPERIMENT_KIND: "custom_model_development"})
        _EXPERIMENT_IDS[uri, cfg.experiment] = experiment_id
    return experiment_id


def _experiment_id(cfg: TrackingConfig) -> Optional[str]:
    """The experiment's id, None if it does not exist (yet)."""
    key = (resolve_uri(cfg), cfg.experiment)
    if key not in _EXPERIMENT_IDS:
        experiment = _client(cfg).get_experiment_by_name(cfg.experiment)
        if experiment is None:
            return None
        _EXPERIMENT_IDS[key] = experiment.experiment_id
    return _EXPERIMENT_IDS[key]


def _text(value: Any, cap: int) -> str:
    return redact("null" if value is None else str(value))[:cap]


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
        if status != "FINISHED":  # points cut off with their sweep must not stay RUNNING either
            _kill_running_children(client, client.get_run(run_id).info.experiment_id, run_id)
        client.set_terminated(run_id, status=status)


def _kill_running_children(client: Any, experiment_id: str, run_id: str) -> None:
    for child in client.search_runs([experiment_id],
                                    f"tags.mlflow.parentRunId = '{run_id}' and attributes.status = 'RUNNING'"):
        client.set_terminated(child.info.run_id, status="KILLED")


def log_artifacts(cfg: TrackingConfig, run_id: str, paths: list[Path], base: Optional[Path] = None) -> None:
    """Attach files that exist to a run; a file in a subfolder of ``base`` keeps that folder (``repeat_1/...``)."""
    client = _client(cfg)
    for path in map(Path, paths):
        if path.exists():
            folder = path.parent.relative_to(base).as_posix() if base and path.parent.is_relative_to(base) else "."
            client.log_artifact(run_id, str(path), artifact_path=None if folder == "." else folder)


def start_point(cfg: TrackingConfig, job: JobInfo, params: dict[str, Any]) -> Optional[str]:
    """Create a point's run, RUNNING, with its identity tags and its params, before its trial starts (so the UI
    shows it while it runs); returns its id (None when tracking is off)."""
    if cfg.backend == "none":
        return None
    from mlflow.entities import Param

    client = _client(cfg)
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
        earlier = job_run(cfg, job)
        if earlier is not None:  # the same job again (requeued after a preemption): one point, one run
            client.update_run(earlier, status="RUNNING")
            return earlier
    run = client.create_run(init_store(cfg), tags={k: _text(v, _TAG_MAX) for k, v in tags.items() if v != ""})
    entries = [Param(k, _text(v, _PARAM_MAX)) for k, v in sorted(params.items())]
    for start in range(0, len(entries), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run.info.run_id, params=entries[start : start + 100])
    return run.info.run_id


def finish_point(cfg: TrackingConfig, run_id: str, record: PointRecord, artifacts: list[Path],
                 base: Optional[Path] = None) -> str:
    """Land a point's outcome on its run: status and failure tags, metrics, each repeat as steps, artifacts; then
    close it (FAILED for a failed point, else FINISHED)."""
    from mlflow.entities import Metric, RunTag

    client = _client(cfg)
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
        "prediction_mismatch": str(any("differs from predicted" in n for n in outcome.notes)).lower(),
    }
    now_ms = int(time.time() * 1000)
    metrics = [Metric(k, float(v), now_ms, 0) for k, v in sorted(outcome.metrics.items()) if v is not None]
    metrics += [Metric(f"repeat_{k}", float(v), now_ms, step)  # each repeat as a step: its spread in the UI's charts
                for step, trial in enumerate(outcome.repeats) for k, v in sorted(trial.items())
                if isinstance(v, (int, float)) and not isinstance(v, bool)]
    client.log_batch(run_id, tags=[RunTag(k, _text(v, _TAG_MAX)) for k, v in tags.items() if v != ""])
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
    log_artifacts(cfg, run_id, artifacts, base)
    client.set_terminated(run_id, status="FAILED" if outcome.status == Status.FAIL else "FINISHED")
    return run_id


def job_run(cfg: TrackingConfig, job: JobInfo) -> Optional[str]:
    """The run a sweep's job opened for its point and never finished (its process was killed, or the job was
    requeued), or None."""
    if not job.parent_run_id:
        return None
    runs = _client(cfg).search_runs(
        [init_store(cfg)], f"tags.mlflow.parentRunId = '{job.parent_run_id}' and tags.job_num = '{job.job_num}'",
        max_results=10)
    unfinished = [r for r in runs if "status" not in r.data.tags]  # a finished point carries its status tag
    return unfinished[0].info.run_id if unfinished else None


def kill_point(cfg: TrackingConfig, run_id: str) -> None:
    """Close a point's run as KILLED: its trial was interrupted and left no outcome."""
    _client(cfg).set_terminated(run_id, status="KILLED")


class LiveSeries:
    """A running point's progress as step metrics on its run: per decode iteration ``iters/tokens``,
    ``iters/iter_s``, ``iters/tok_s`` and ``iters/pages_in_use``, per round ``rounds/*``. Batched (one write every
    ``every_s``); a store error turns it off with one warning, never the trial."""

    def __init__(self, cfg: TrackingConfig, run_id: str, every_s: float = 2.0):
        self.client, self.run_id, self.every_s = _client(cfg), run_id, every_s
        self.pending: list[Any] = []
        self.step = 0
        self.last = time.monotonic()
        self.broken = False

    def __call__(self, event: dict[str, Any]) -> None:
        """Take one event of the engine child's progress file."""
        from mlflow.entities import Metric

        now_ms = int(time.time() * 1000)
        if "round_done" in event:
            step, names = event["round_done"], ("round_total_s", "round_total_generated", "pages_in_use")
            self.pending += [Metric(f"rounds/{k}", float(event[k]), now_ms, step) for k in names]
            self.pending.append(Metric("rounds/round_avg_tok_s", event["round_total_generated"] /
                                       max(event["round_total_s"], 1e-9), now_ms, step))
        else:
            tok_s = event["tokens"] / event["elapsed"] if event["elapsed"] > 0 else 0.0
            values = {"tokens": event["tokens"], "iter_s": event.get("iter_s", 0.0), "tok_s": tok_s,
                      "pages_in_use": event.get("pages", 0), "round": event["round"]}
            self.pending += [Metric(f"iters/{k}", float(v), now_ms, self.step) for k, v in values.items()]
            self.step += 1
        if time.monotonic() - self.last >= self.every_s:
            self.flush()

    def flush(self) -> None:
        """Write what is pending."""
        if self.broken or not self.pending:
            self.pending = []
            return
        try:
            for start in range(0, len(self.pending), 1000):
                self.client.log_batch(self.run_id, metrics=self.pending[start : start + 1000])
        except Exception as exc:  # noqa: BLE001 - a store hiccup must not touch the trial; the outcome lands later
            self.broken = True
            print(f"[m9] warning: live metrics stopped ({type(exc).__name__}); the outcome is still recorded",
                  file=sys.stderr, flush=True)
        self.pending, self.last = [], time.monotonic()


def record_point(cfg: TrackingConfig, job: JobInfo, record: PointRecord, artifacts: list[Path],
                 base: Optional[Path] = None) -> Optional[str]:
    """A point that had no live phase (rejected, planned-then-recorded): its run in one go."""
    run_id = start_point(cfg, job, record.params)
    return finish_point(cfg, run_id, record, artifacts, base) if run_id else None


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
    client, experiment_id = _client(cfg), _experiment_id(cfg)
    if experiment_id is None:
        return None
    if ref and "'" in ref:
        return None  # no sweep id or run id has a quote; keep it out of the search filter
    query = "tags.kind = 'sweep'" + (f" and tags.sweep_id = '{ref}'" if ref else "")
    runs = client.search_runs([experiment_id], query, order_by=["attributes.start_time DESC"],
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


def load_points(cfg: TrackingConfig, parent: dict[str, Any]) -> list[PointRecord]:
    """The records of a sweep's points (``parent`` from ``find_sweep``), rebuilt from their runs."""
    client = _client(cfg)
    runs = client.search_runs([parent["experiment_id"]], f"tags.mlflow.parentRunId = '{parent['run_id']}'",
                              max_results=5000)
    return sorted((_record(run) for run in runs), key=lambda r: r.job_num)


def find_point(cfg: TrackingConfig, key: str) -> Optional[PointRecord]:
    """The record of the newest finished point run with this ``point_key``, or None."""
    client, experiment_id = _client(cfg), _experiment_id(cfg)
    if experiment_id is None or not key.isalnum():
        return None
    runs = client.search_runs([experiment_id], f"tags.kind = 'point' and tags.point_key = '{key}'",
                              order_by=["attributes.start_time DESC"], max_results=50)
    done = [r for r in runs if r.info.status in ("FINISHED", "FAILED") and r.data.tags.get("status")]
    return _record(done[0]) if done else None  # a RUNNING or KILLED run has no outcome


def reap_stale_sweeps(cfg: TrackingConfig) -> list[dict[str, str]]:
    """Close as KILLED every sweep run (and its running point runs) left RUNNING by a launching process of this host
    that no longer exists: a SIGKILLed sweep cannot close its own record. Returns the reaped runs' tags."""
    client, experiment_id = _client(cfg), _experiment_id(cfg)
    if experiment_id is None:
        return []
    reaped = []
    for run in client.search_runs([experiment_id],
                                  "tags.kind = 'sweep' and attributes.status = 'RUNNING'", max_results=1000):
        owner = run.data.tags.get("launcher_process", "")
        if not owner or not process_gone(owner):
            continue
        run_id = run.info.run_id
        _kill_running_children(client, experiment_id, run_id)
        client.set_tag(run_id, "ended_by", f"closed by a later sweep: its launching process {owner} was gone")
        client.set_terminated(run_id, status="KILLED")
        reaped.append(dict(run.data.tags))
    return reaped


def _record(run) -> PointRecord:
    """A point run as a point record."""
    t, params = run.data.tags, {k: _parse(v) for k, v in run.data.params.items()}
    return PointRecord(
        sweep_id=t.get("sweep_id", ""),
        job_num=int(t.get("job_num", 0)),
        overrides=tuple(json.loads(t["overrides_json"]) if "overrides_json" in t else t.get("overrides", "").split()),
        output_dir=t.get("output_dir", ""),
        point_key=t.get("point_key", ""),
        max_seqs=params.get("engine.max_seqs"),
        max_pages=params.get("resolved.max_pages"),
        prompts=params.get("resolved.num_prompts"),
        outcome=Outcome(
            status=Status(t["status"]),
            failure_kind=t.get("failure_kind") or None,
            signature=t.get("signature", ""),
            metrics=dict(run.data.metrics),
            notes=tuple(json.loads(t.get("notes_json", "[]"))),
            runtime={k: t.get(k, "") for k in ("backend", "device_kind", "device_count")},
        ),
        params=params,
        run_id=run.info.run_id,
    )
