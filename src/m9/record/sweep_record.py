"""A sweep's own record in the launching process: ``m9_sweep.json`` and the MLflow parent run, opened before any
point starts and closed once, with the right status, when the sweep ends, fails or is interrupted.

A sweep whose launching process was SIGKILLed cannot close its record; the next sweep on the same store closes it
as KILLED (``tracking.reap_stale_sweeps``), so no parent run stays RUNNING forever.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

from m9.record import sync, tracking
from m9.record.answer import Answer, dump
from m9.record.journal import read_sweep_meta, write_sweep_meta
from m9.record.provenance import process_identity
from m9.record.tracking import Store
from m9.run.files import write_json


class SweepRecord:
    """The open record of one sweep."""

    def __init__(self, store: Store, sweep_dir: Path, command: str, grid: Optional[list[list[str]]],
                 n_points: Optional[int], track: bool = True, mode: str = "grid"):
        self.store, self.sweep_dir, self.closed = store, sweep_dir, False
        self.track = track and store.enabled
        parent = None
        if self.track:
            catch_up(store)
            parent = tracking.start_sweep_run(store, sweep_dir.name, command, grid, sweep_dir, n_points, mode)
        self.meta: dict[str, Any] = {
            "sweep_id": sweep_dir.name, "command": command, "mode": mode, "grid": grid, "n_points": n_points,
            "parent_run_id": parent, "launcher_process": process_identity(), "started_at": time.time(),
        }
        write_sweep_meta(sweep_dir, self.meta)

    @property
    def parent_run_id(self) -> Optional[str]:
        """The sweep's MLflow run, when tracked."""
        return self.meta["parent_run_id"]

    def close(self, status: str, summary: dict[str, Any], files: list[Path], answer: Optional[Answer] = None) -> None:
        """Close the sweep (``FINISHED``, ``FAILED`` or ``KILLED``) with its summary and report files; a sweeper's
        ``answer`` is kept in ``m9_sweep.json`` and in ``<answer.name>.json``. The parent run is terminated even when
        writing the sweep's own files fails."""
        kept = dump(answer) if answer is not None else None
        self.meta.update({"status": status, "ended_at": time.time(), **({"answer": kept} if kept else {})})
        try:
            write_sweep_meta(self.sweep_dir, self.meta)
            if kept is not None:
                files = [*files, write_json(self.sweep_dir / f"{answer.name}.json", kept)]
        finally:
            self.closed = True
            if self.parent_run_id:
                try:
                    tracking.end_sweep_run(self.store, self.parent_run_id, status, summary, files)
                except Exception as exc:  # noqa: BLE001 - the store is down: the next sweep on it closes the run
                    print(f"[m9] warning: the sweep's run could not be closed in the tracking store "
                          f"({type(exc).__name__}); the next m9 command on it closes it and writes what is missing",
                          file=sys.stderr, flush=True)


def catch_up(store: Store) -> None:
    """What earlier sweeps left undone in the store, done by the next m9 command on it: a sweep whose launching
    process died is closed (KILLED, or the status it ended with), and the points a store that was down did not take
    are written from their journals."""
    for tags in tracking.reap_stale_sweeps(store):
        _mark_killed(Path(tags.get("output_dir", "")))
        _catch_up(store, tags["run_id"], Path(tags.get("output_dir", "")), reaped=True)
    for run_id, folder in tracking.incomplete_sweeps(store):
        _catch_up(store, run_id, folder)


def _catch_up(store: Store, run_id: str, sweep_dir: Path, reaped: bool = False) -> None:
    """An earlier sweep's points its store did not take, written now (the store answers again); a reaped sweep
    that did end (the store was down when it closed) gets the status it ended with."""
    if not sweep_dir.is_dir():
        return
    ended = (read_sweep_meta(sweep_dir) or {}).get("status")
    if reaped and ended and ended != "KILLED":
        tracking.end_sweep_run(store, run_id, ended, {"ended_by": "closed by a later sweep: the store was down when "
                                                               "it ended"})
    done = sync.sync_sweep(store, sweep_dir, only_pending=True, parent_run_id=run_id)
    if done.written or done.failed:
        tracking.set_pending(store, run_id, len(done.failed))
        print(f"[m9] tracking store caught up with sweep {sweep_dir.name}: {done.line()}", flush=True)


def _mark_killed(sweep_dir: Path) -> None:
    """The journal side of a reaped sweep: its ``m9_sweep.json`` says KILLED too."""
    meta = read_sweep_meta(sweep_dir) if sweep_dir.is_dir() else None
    if meta is not None and "status" not in meta:
        write_sweep_meta(sweep_dir, {**meta, "status": "KILLED", "ended_by": "closed by a later sweep"})
