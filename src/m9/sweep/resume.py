"""Resume without duplicates: find a point that an earlier sweep already measured, and adopt its record.

A point is found by its key (``provenance.point_key``: what it measures, the code and engine that measure it, the
device, and which attempt it is). The tracking store is searched when there is one, else the journals of the
sweep directories beside this sweep's. An adopted point is not recorded again: its record in this sweep names the
run and sweep that measured it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from m9.outcome.outcome import Outcome
from m9.outcome.status import Status
from m9.record import tracking
from m9.record.tracking import Store
from m9.record.journal import PointRecord, read_record, write_record
from m9.record.provenance import JobInfo
from m9.run.files import PointDir


class FinishedPoints:
    """Points already measured, by key."""

    def __init__(self, store: Store, sweeps_root: Path, enabled: bool = True):
        self.store, self.sweeps_root, self.enabled = store, sweeps_root, enabled
        self._journals: Optional[dict[str, PointRecord]] = None

    def find(self, key: str) -> Optional[PointRecord]:
        """The finished point with this key, or None (always None when resuming is off)."""
        if not self.enabled or not key:
            return None
        if self.store.enabled:
            found = tracking.find_point(self.store, key)
            if found is None:
                return None
            journal = PointDir(Path(found.output_dir)).record  # the complete record, when its directory is still there
            if journal.exists():
                on_disk = _read(journal)
                if on_disk is not None and on_disk.point_key == key:
                    return on_disk.replace(run_id=found.run_id)
            return found
        return self._journal_index().get(key)

    def _journal_index(self) -> dict[str, PointRecord]:
        if self._journals is None:
            self._journals = {}
            for folder in sorted(p for p in self.sweeps_root.glob("*/*") if p.is_dir()):
                record = _read(PointDir(folder).record)
                if record is not None and record.point_key and record.status != Status.PLANNED:
                    self._journals[record.point_key] = record
        return self._journals


def _read(path: Path) -> Optional[PointRecord]:
    try:
        return read_record(path)
    except (OSError, ValueError, KeyError, TypeError):  # half-written or foreign: not a finished point
        return None


def adopt(found: PointRecord, job: JobInfo) -> tuple[PointRecord, Outcome]:
    """Write a found point into this sweep as job ``job.job_num``, naming where it was measured."""
    origin = f"sweep {found.sweep_id} job {found.job_num}" + (f" (run {found.run_id})" if found.run_id else "")
    outcome = dataclasses.replace(found.outcome, notes=(*found.outcome.notes, f"reused from {origin}"))
    record = found.replace(sweep_id=job.sweep_id, job_num=job.job_num, overrides=tuple(job.overrides),
                           output_dir=str(job.output_dir), outcome=outcome,
                           reused_from={"sweep_id": found.sweep_id, "job_num": found.job_num, "run_id": found.run_id,
                                        "output_dir": found.output_dir})
    write_record(record)
    return record, outcome
