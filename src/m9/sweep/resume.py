"""Resume without duplicates: find a point that an earlier sweep already measured, and adopt its record.

A point is found by its key (``provenance.point_key``: what it measures, the code and engine that measure it, the
device, and which attempt it is). The tracking store is searched when there is one, else the journals of the
sweep directories beside this sweep's. An adopted point is not recorded again: its entry in this sweep names the
run and sweep that measured it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from m9 import tracking
from m9.config import TrackingConfig
from m9.journal import ENTRY, write_entry
from m9.outcome import PLANNED, Outcome
from m9.provenance import JobInfo


class FinishedPoints:
    """Points already measured, by key."""

    def __init__(self, cfg: TrackingConfig, sweeps_root: Path, enabled: bool = True):
        self.cfg, self.sweeps_root, self.enabled = cfg, sweeps_root, enabled
        self._journals: Optional[dict[str, dict[str, Any]]] = None

    def find(self, key: str) -> Optional[dict[str, Any]]:
        """The finished entry with this key, or None (always None when resuming is off)."""
        if not self.enabled or not key:
            return None
        if self.cfg.backend != "none":
            entry = tracking.find_point(self.cfg, key)
            if entry is None:
                return None
            journal = Path(entry["output_dir"]) / ENTRY  # the complete record, when its directory is still there
            if journal.exists():
                on_disk = json.loads(journal.read_text())
                if on_disk.get("point_key") == key:
                    return {**on_disk, "run_id": entry["run_id"]}
            return entry
        return self._journal_index().get(key)

    def _journal_index(self) -> dict[str, dict[str, Any]]:
        if self._journals is None:
            self._journals = {}
            for path in sorted(self.sweeps_root.glob(f"*/*/{ENTRY}")):
                try:
                    entry = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                if entry.get("point_key") and entry["outcome"]["status"] != PLANNED:
                    self._journals[entry["point_key"]] = entry
        return self._journals


def adopt(found: dict[str, Any], job: JobInfo) -> tuple[dict[str, Any], Outcome]:
    """Write a found point into this sweep as job ``job.job_num``, naming where it was measured."""
    origin = f"sweep {found['sweep_id']} job {found['job_num']}" + (f" (run {found['run_id']})" if found.get("run_id")
                                                                     else "")
    outcome = {**found["outcome"], "notes": [*found["outcome"]["notes"], f"reused from {origin}"]}
    entry = {**found, "sweep_id": job.sweep_id, "job_num": job.job_num, "overrides": list(job.overrides),
             "output_dir": str(job.output_dir), "outcome": outcome,
             "reused_from": {k: found.get(k) for k in ("sweep_id", "job_num", "run_id", "output_dir")}}
    write_entry(entry)
    return entry, Outcome.from_dict(outcome)
