"""A sweep's lifecycle in the launching process: its record and parent run are opened before any job starts and
closed once, with the right status, when the sweep ends, fails or is interrupted."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Optional

from m9 import analysis, tracking
from m9.config import TrackingConfig
from m9.journal import read_sweep, write_sweep_meta


@dataclasses.dataclass
class _Open:
    tracking: TrackingConfig
    sweep_dir: Path
    meta: dict[str, Any]


_open: Optional[_Open] = None  # the sweep this process launched and has not closed yet
_checked_grid: Optional[list[list[str]]] = None  # the points the entry point's preflight composed


def expect_grid(points: list[list[str]]) -> None:
    """Remember the points the preflight checked, for the sweep record (Hydra does not tell its callbacks)."""
    global _checked_grid
    _checked_grid = points or None


def open_sweep(cfg: TrackingConfig, sweep_dir: Path, track: bool = True) -> dict[str, Any]:
    """Write the sweep's record (command, grid) and, when ``track``, open its parent run; returns the record."""
    global _open
    grid = _checked_grid
    command = " ".join(["m9", *sys.argv[1:]])
    sweep_id = sweep_dir.name
    parent = None
    if track and cfg.backend != "none":
        parent = tracking.start_sweep_run(cfg, sweep_id, command, grid, sweep_dir)
    meta = {"sweep_id": sweep_id, "command": command, "grid": grid, "n_points": len(grid) if grid else None,
            "parent_run_id": parent, "started_at": time.time()}
    write_sweep_meta(sweep_dir, meta)
    _open = _Open(cfg, sweep_dir, meta)
    return meta


def close_sweep(status: str) -> Optional[tuple[list[dict[str, Any]], dict[str, Any]]]:
    """Close the open sweep (``FINISHED``, ``FAILED`` or ``KILLED``): summary and report on the parent run.
    Returns the sweep's entries and summary, or None when no sweep was open. The parent run is terminated even when the
    report or the summary fails; the sweep counts as closed only once that was attempted."""
    global _open
    if _open is None:
        return None
    current = _open
    entries = read_sweep(current.sweep_dir)
    meta = {**current.meta, "status": status, "ended_at": time.time()}
    files: list[Path] = []
    summary: dict[str, Any] = {}
    try:
        write_sweep_meta(current.sweep_dir, meta)
        if entries:
            from m9 import report  # plots pull in matplotlib: only when there is something to plot

            summary = analysis.summary(entries)
            files = report.write(report.Sweep(meta["sweep_id"], entries, meta["command"], meta["parent_run_id"],
                                              current.sweep_dir, meta), current.sweep_dir)
    finally:
        try:
            if meta["parent_run_id"]:
                tracking.end_sweep_run(current.tracking, meta["parent_run_id"], status, summary, files)
        finally:
            _open = None
    return entries, summary
