"""The canonical record of a point: one ``outcome.json`` in the point's output directory.

It is written before anything is sent to the tracking store, so a sweep's matrix and report can always be rebuilt
from its directory: with tracking off, on a remote launcher's shared filesystem, or when the store was down.
The tracking store holds the same entry (``tracking.record_point`` / ``tracking.load_points``), so reports read
either source through one shape:

    {"sweep_id", "job_num", "overrides": [...], "run_id", "output_dir", "point_key", "max_seqs", "max_pages", "prompts",
     "outcome": {"status", "failure_kind", "signature", "metrics", "notes", "runtime"},
     "params": {"engine.max_seqs": 8, ..., "resolved.max_pages": 136, ...}}
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

from m9.config import M9Config, flatten
from m9.outcome import Outcome
from m9.plan import Plan
from m9.provenance import JobInfo

ENTRY = "outcome.json"
SWEEP = "m9_sweep.json"


def make_entry(job: JobInfo, cfg: M9Config, plan: Plan, outcome: Outcome) -> dict[str, Any]:
    """The record of one point."""
    return {
        "sweep_id": job.sweep_id,
        "job_num": job.job_num,
        "overrides": list(job.overrides),
        "run_id": None,
        "output_dir": str(job.output_dir),
        "point_key": job.point_key,
        "max_seqs": cfg.engine.max_seqs,
        "max_pages": plan.max_pages,
        "prompts": plan.num_prompts,
        "outcome": asdict(outcome),
        "params": point_params(cfg, plan),
    }


def point_params(cfg: M9Config, plan: Plan) -> dict[str, Any]:
    """A point's params as recorded: the flattened config and what the plan resolved (``resolved.*``)."""
    return {**flatten(cfg), **plan.resolved_params()}


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write JSON atomically (a reader never sees half a file); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)
    return path


def write_entry(entry: dict[str, Any]) -> Path:
    """Write (or rewrite, once the run id is known) a point's entry in its output directory."""
    return write_json(Path(entry["output_dir"]) / ENTRY, entry)


def read_sweep(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every point entry under a sweep directory, in job order."""
    entries = [json.loads(p.read_text()) for p in sweep_dir.glob(f"*/{ENTRY}")]
    return sorted(entries, key=lambda e: e["job_num"])


def write_sweep_meta(sweep_dir: Path, meta: dict[str, Any]) -> Path:
    """The sweep's own record (command, grid, parent run id), written by the launching process."""
    return write_json(sweep_dir / SWEEP, meta)


def read_sweep_meta(sweep_dir: Path) -> Optional[dict[str, Any]]:
    """The sweep record, or None for a directory m9 did not launch."""
    path = sweep_dir / SWEEP
    return json.loads(path.read_text()) if path.exists() else None
