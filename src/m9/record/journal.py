"""The canonical record of a point: a ``PointRecord``, kept as ``outcome.json`` in the point's output directory.

It is written before anything is sent to the tracking store, so a sweep's matrix and report can always be rebuilt
from its directory: with tracking off, on a remote launcher's shared filesystem, or when the store was down.
The tracking store holds the same record (``tracking.finish_point`` / ``tracking.load_points`` rebuild it from a
run), so every reader (analysis, matrix, plots, report, resume) takes one type from either source.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from m9.inputs import checkpoint
from m9.config import M9Config, flatten
from m9.outcome.outcome import Outcome, Status
from m9.plan import Plan
from m9.record.provenance import JobInfo
from m9.record.redact import redact

ENTRY = "outcome.json"
SWEEP = "m9_sweep.json"


@dataclass(frozen=True)
class PointRecord:
    """One point of a sweep, whatever happened to it: who it was, what it was set to, and its outcome."""

    sweep_id: str
    job_num: int
    overrides: tuple[str, ...]
    """The point's own command-line overrides (its grid cell)."""
    output_dir: str
    point_key: str
    """Hash of what was measured (see ``provenance.point_key``): equal keys are the same measurement."""
    max_seqs: Optional[int]
    max_pages: Optional[int]
    """Pages the engine got (``resolved.max_pages``)."""
    prompts: Optional[int]
    outcome: Outcome
    params: Mapping[str, Any]
    """The flattened config and what the plan resolved (``resolved.*``), as recorded in MLflow."""
    run_id: Optional[str] = None
    """The point's MLflow run (None: tracking off, or the store failed: see ``tracking_error``)."""
    tracking_error: Optional[str] = None
    reused_from: Optional[Mapping[str, Any]] = None
    """Set on a point adopted from an earlier sweep by resume: that sweep's id, job, run and directory."""

    @property
    def status(self) -> Status:
        return self.outcome.status

    @property
    def metrics(self) -> Mapping[str, float]:
        return self.outcome.metrics

    def replace(self, **changes: Any) -> "PointRecord":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``outcome.json``."""
        return {**asdict(self), "params": dict(self.params)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PointRecord":
        """Inverse of ``to_json``."""
        known = {f: data[f] for f in cls.__dataclass_fields__ if f in data}
        return cls(**{**known, "overrides": tuple(known["overrides"]), "outcome": Outcome.from_dict(known["outcome"])})


def make_record(job: JobInfo, cfg: M9Config, plan: Plan, outcome: Outcome) -> PointRecord:
    """The record of one point, before it is tracked."""
    return PointRecord(
        sweep_id=job.sweep_id,
        job_num=job.job_num,
        overrides=tuple(redact(o) for o in job.overrides),
        output_dir=str(job.output_dir),
        point_key=job.point_key,
        max_seqs=cfg.engine.max_seqs,
        max_pages=plan.max_pages,
        prompts=plan.num_prompts,
        outcome=outcome,
        params=point_params(cfg, plan),
    )


def point_params(cfg: M9Config, plan: Plan) -> dict[str, Any]:
    """A point's params as recorded: the flattened config and what the plan resolved (``resolved.*``)."""
    params = {**flatten(cfg), **plan.resolved_params(), **checkpoint.provenance(cfg.model)}
    return {k: redact(v) if isinstance(v, str) else v for k, v in params.items()}


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write JSON atomically (a reader never sees half a file); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)
    return path


def write_record(record: PointRecord) -> Path:
    """Write (or rewrite, once the run id is known) a point's record in its output directory."""
    return write_json(Path(record.output_dir) / ENTRY, record.to_json())


def read_record(path: Path) -> PointRecord:
    """A point's record from its ``outcome.json``."""
    return PointRecord.from_json(json.loads(path.read_text()))


def read_sweep(sweep_dir: Path) -> list[PointRecord]:
    """Every point record under a sweep directory, in job order."""
    return sorted((read_record(p) for p in sweep_dir.glob(f"*/{ENTRY}")), key=lambda r: r.job_num)


def write_sweep_meta(sweep_dir: Path, meta: dict[str, Any]) -> Path:
    """The sweep's own record (command, grid, parent run id), written by the launching process."""
    return write_json(sweep_dir / SWEEP, meta)


def read_sweep_meta(sweep_dir: Path) -> Optional[dict[str, Any]]:
    """The sweep record, or None for a directory m9 did not launch."""
    path = sweep_dir / SWEEP
    return json.loads(path.read_text()) if path.exists() else None
