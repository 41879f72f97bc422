"""Live progress on a terminal: the sweep (points done of N, pass/fail counts, elapsed, ETA) and the running trial
(round, decode iteration, tokens so far, tok/s). Silent when stdout is not a terminal (log files, CI, SLURM), and
with M9_PROGRESS=0.

The display lives in the session of the process that runs the points one after another (the basic launcher's); a
point run by a remote launcher shows only its own trial line, in its own log, which is no terminal.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

from m9.protocol import IterationEvent, ProgressEvent


def _enabled() -> bool:
    return sys.stdout.isatty() and os.environ.get("M9_PROGRESS", "1") != "0"


class Display:
    """Two lines of rich progress: the sweep and the current trial. Every method is a no-op when disabled."""

    def __init__(self, total_points: Optional[int], enabled: Optional[bool] = None, console: Any = None):
        self.enabled = _enabled() if enabled is None else enabled
        self.total = total_points
        self.counts: dict[str, int] = {}
        self.said: set[str] = set()
        self._progress = None
        if not self.enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[detail]}"), transient=False,
            console=console,
        )
        self._sweep = self._progress.add_task("sweep", total=total_points, detail="")
        self._trial = self._progress.add_task("trial", total=None, detail="", visible=False)
        self._progress.start()

    def start_point(self, label: str, n_rounds: int) -> None:
        """A point starts running."""
        if self._progress:
            self._progress.reset(self._trial, total=n_rounds, description=f"trial {label}", detail="", visible=True)

    def trial(self, event: ProgressEvent) -> None:
        """The engine child's progress: a decode iteration moves the trial line (a round's end moves nothing)."""
        if self._progress and isinstance(event, IterationEvent):
            self._progress.update(self._trial, completed=event.round,
                                  detail=f"round {event.round + 1} iter {event.iter} tokens {event.tokens} "
                                         f"{event.tok_s:,.0f} tok/s")

    def end_point(self, status: str) -> None:
        """A point is recorded."""
        self.counts[status] = self.counts.get(status, 0) + 1
        if self._progress:
            self._progress.update(self._trial, visible=False)
            tally = " ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
            self._progress.update(self._sweep, advance=1, detail=tally)

    def warn_once(self, text: str) -> None:
        """``[m9] warning: text``, once: a sweep's points that share a warning print it once."""
        if text not in self.said:
            self.said.add(text)
            print(f"[m9] warning: {text}", flush=True)

    def close(self) -> None:
        """Stop drawing."""
        if self._progress:
            self._progress.stop()
            self._progress = None
