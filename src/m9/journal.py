"""The sweep's own record on disk: one ``outcome.json`` per point, in the point's output directory.

It is written before anything is sent to the tracking store, so a sweep's matrix can always be rebuilt from its
directory, with tracking off, on a remote launcher's shared filesystem, or when the store was unreachable.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

from m9.config import M9Config, to_dict
from m9.outcome import Outcome
from m9.plan import Plan
from m9.provenance import JobInfo

ENTRY = "outcome.json"


def write_entry(job: JobInfo, cfg: M9Config, plan: Plan, outcome: Outcome, run_id: Optional[str] = None) -> Path:
    """Write (or rewrite, once the run id is known) the point's journal entry."""
    entry = {
        "sweep_id": job.sweep_id,
        "job_num": job.job_num,
        "overrides": list(job.overrides),
        "run_id": run_id,
        "max_seqs": cfg.engine.max_seqs,
        "max_pages": plan.max_pages,
        "prompts": plan.num_prompts,
        "outcome": asdict(outcome),
        "config": to_dict(cfg),
    }
    path = job.output_dir / ENTRY
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry, indent=1, default=str))
    os.replace(tmp, path)
    return path


def read_sweep(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every journal entry under a sweep directory, in job order."""
    entries = [json.loads(p.read_text()) for p in sweep_dir.glob(f"*/{ENTRY}")]
    return sorted(entries, key=lambda e: e["job_num"])
