"""Journals into a tracking store: what a sweep folder holds and the store lacks, written once, never a second run.

A point's journal (``record.json``) is written before the store is; when the store did not answer, the journal
says so (``tracking_error``). Then the store catches up:

- at the end of the sweep, for its own points (a store that was down mid-sweep and is back);
- on the next sweep or ``m9 report`` on the same store, for a sweep that ended with points still missing (its
  parent run says how many, ``store_pending``) or whose launching process was killed;
- with ``m9 sync [SWEEP_DIR ...] [--tracking-uri URI]``: after an outage, to copy a sweep run on a laptop into the
  team's server, or to rebuild a store from sweep folders.

A point is matched in the store by its sweep, job number and point key: a finished run is left as it is; a run
left RUNNING (its finish could not be written) is finished with the point's status, tags and metrics; a missing one
is created. Points a sweep adopted from an earlier sweep (resume) are that sweep's to sync.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from m9.config import TrackingConfig
from m9.outcome.status import Status
from m9.record import tracking
from m9.record.tracking import Store
from m9.record.journal import PointRecord, read_sweep, read_sweep_meta, write_record
from m9.record.provenance import JobInfo, process_gone
from m9.run.files import PointDir


@dataclass
class Synced:
    """What one sync did, point by point (``sweep job N``)."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    """Points the store did not take this time (it did not answer): still pending."""

    def add(self, other: "Synced") -> None:
        self.written += other.written
        self.skipped += other.skipped
        self.failed += other.failed

    def line(self) -> str:
        return (f"{len(self.written)} points written, {len(self.skipped)} already there"
                + (f", {len(self.failed)} not taken (the store did not answer: {self.failed[0]} first)"
                   if self.failed else ""))


def pending(sweep_dir: Path) -> list[PointRecord]:
    """The points of a sweep whose journal says the store has not got them."""
    return [r for r in read_sweep(sweep_dir) if r.tracking_error and not r.reused_from]


def _artifacts(record: PointRecord) -> list[Path]:
    point = PointDir(Path(record.output_dir))
    repeats = int(record.params.get("trial.repeats") or 1)
    return [point.config, *(p for t in point.trials(repeats) for p in (t.log, t.result))]


def _parent(store: Store, sweep_dir: Path) -> Optional[str]:
    """The sweep's parent run in this store: found by its sweep id, else made from ``m9_sweep.json`` (closed with
    the status the sweep ended with). None for a folder m9 did not launch as a sweep."""
    meta = read_sweep_meta(sweep_dir)
    if meta is None:
        return None
    files = [p for p in (sweep_dir / "report.md", *sorted(sweep_dir.glob("*.png"))) if p.exists()]
    found = tracking.find_sweep(store, meta["sweep_id"])
    if found is not None:
        owner = found["tags"].get("launcher_process", "")
        if found["status"] == "RUNNING" and meta.get("status") and (not owner or process_gone(owner)):
            # the sweep ended while the store was down: its run gets the status the sweep ended with
            tracking.end_sweep_run(store, found["run_id"], meta["status"], {"closed_by": "m9 sync"}, files)
        return found["run_id"]
    run_id = tracking.start_sweep_run(store, meta["sweep_id"], meta.get("command", ""), meta.get("grid"), sweep_dir,
                                      meta.get("n_points"), meta.get("mode", "grid"))
    tracking.end_sweep_run(store, run_id, meta.get("status", "KILLED"), {"synced_from": str(sweep_dir)}, files)
    return run_id


def sync_point(store: Store, record: PointRecord, parent_run_id: Optional[str]) -> Optional[str]:
    """One point into the store; returns its run id, or None when the store has it finished already."""
    found = tracking.point_run(store, record.sweep_id, record.job_num, record.point_key)
    if found is not None and found[1]:
        return None
    job = JobInfo.read(PointDir(Path(record.output_dir))) or JobInfo(
        record.sweep_id, record.job_num, tuple(record.overrides), Path(record.output_dir), point_key=record.point_key)
    job = dataclasses.replace(job, parent_run_id=parent_run_id)
    run_id = found[0] if found is not None else tracking.start_point(store, job, dict(record.params))
    if run_id is None:  # tracking off
        return None
    tracking.finish_point(store, run_id, record, _artifacts(record), Path(record.output_dir))
    return run_id


def sync_sweep(store: Store, sweep_dir: Path, only_pending: bool = False,
               parent_run_id: Optional[str] = None) -> Synced:
    """A sweep folder's points into the store (``only_pending``: those its journals say the store lacks). A point
    the store takes now has its journal updated; the store failing again leaves it pending."""
    done = Synced()
    records = pending(sweep_dir) if only_pending else [r for r in read_sweep(sweep_dir) if not r.reused_from]
    records = [r for r in records if r.status != Status.PLANNED]  # a plan measures nothing: never tracked
    if not records:
        return done
    try:
        parent = parent_run_id or _parent(store, sweep_dir)
    except Exception as exc:  # noqa: BLE001 - the store is still down: everything stays pending
        done.failed += [f"{r.sweep_id} job {r.job_num}: {type(exc).__name__}" for r in records]
        return done
    for i, record in enumerate(records):
        label = f"{record.sweep_id} job {record.job_num}"
        try:
            run_id = sync_point(store, record, parent)
        except Exception as exc:  # noqa: BLE001 - see above; the rest is not tried (each try waits on the store)
            done.failed += [f"{label}: {type(exc).__name__}",
                            *(f"{r.sweep_id} job {r.job_num}: not tried" for r in records[i + 1:])]
            break
        if run_id is None:
            done.skipped.append(label)
        else:
            done.written.append(label)
        if record.tracking_error:
            write_record(record.replace(run_id=run_id or record.run_id, tracking_error=None))
    return done


def _target(sweep_dir: Path, uri: Optional[str], experiment: Optional[str]) -> TrackingConfig:
    """The store a sweep syncs into: the one given, else the one it recorded to (its ``tracking.*``)."""
    records = read_sweep(sweep_dir)
    params = records[0].params if records else {}
    return TrackingConfig(uri=uri or params.get("tracking.uri"),
                          experiment=experiment or params.get("tracking.experiment") or "m9")


def main(argv: list[str]) -> int:
    """``m9 sync``."""
    p = argparse.ArgumentParser(prog="m9 sync", description="Write the points of sweep folders into a tracking "
                                "store, once: a point already there (same sweep, job and point key) is left as it is.")
    p.add_argument("sweeps", nargs="*", type=Path, help="sweep folders (default: every one under outputs/sweeps)")
    p.add_argument("--tracking-uri", default=None, help="the store (default: the one each sweep recorded to)")
    p.add_argument("--experiment", default=None, help="the experiment (default: each sweep's tracking.experiment)")
    a = p.parse_args(argv)
    sweeps = a.sweeps or sorted(d for d in (Path("outputs") / "sweeps").glob("*") if d.is_dir())
    missing = [d for d in sweeps if read_sweep_meta(d) is None]
    if missing:
        print(f"m9 sync: error: {missing[0]}: not a sweep folder (no m9_sweep.json)", file=sys.stderr)
        return 2
    total, stores = Synced(), {}
    for sweep in sweeps:
        target = _target(sweep, a.tracking_uri, a.experiment)
        store = stores.setdefault(target, Store(target))
        try:
            store.init()
        except Exception as exc:  # noqa: BLE001 - one line for a store that cannot be opened
            print(f"m9 sync: error: {store.error(exc)}", file=sys.stderr)
            return 3
        done = sync_sweep(store, sweep)
        print(f"[m9] sync {sweep}: {done.line()}", flush=True)
        total.add(done)
    if len(sweeps) > 1:
        print(f"[m9] sync: {total.line()}")
    return 1 if total.failed else 0
