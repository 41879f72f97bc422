"""The files a point leaves, and where: one type for a point's directory, one for a trial's.

    <point>/                     PointDir: job.json (who it is), m9_config.json, outcome.json (the journal entry)
      [repeat_<i>/ | rank_<k>/]  a trial of a repeated point / the trial of process k of a multi-process point
        request.json             TrialRequest, written by the parent before the child starts the trial
        progress.jsonl           IterationEvent / RoundEvent lines, appended by the child while it decodes
        result.json              TrialResult, written once, whole, by the child
        trial.log                the child's output
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from m9.run.protocol import TrialRequest, TrialResult


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically (a reader never sees half a file); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class TrialDir:
    """Where one trial's request, progress, result and log live."""

    path: Path

    @property
    def request(self) -> Path:
        return self.path / "request.json"

    @property
    def progress(self) -> Path:
        return self.path / "progress.jsonl"

    @property
    def result(self) -> Path:
        return self.path / "result.json"

    @property
    def log(self) -> Path:
        return self.path / "trial.log"

    @property
    def heartbeat(self) -> Path:
        """Touched by the engine child while the trial of a multi-process point runs (its peers watch it)."""
        return self.path / "heartbeat"

    def write_request(self, request: TrialRequest) -> None:
        """Hand the trial its orders (and clear what an earlier attempt left)."""
        for path in (self.result, self.progress, self.heartbeat):
            path.unlink(missing_ok=True)
        write_json(self.request, request.to_json())

    def read_request(self) -> TrialRequest:
        return TrialRequest.from_json(json.loads(self.request.read_text()))

    def write_result(self, result: TrialResult) -> None:
        write_json(self.result, result.to_json())

    def read_result(self) -> Optional[TrialResult]:
        """The child's result, or None when it left none."""
        return TrialResult.from_json(json.loads(self.result.read_text())) if self.result.exists() else None


@dataclass(frozen=True)
class PointDir:
    """A point's own directory and the files in it."""

    path: Path

    @property
    def job(self) -> Path:
        """Who the point is in its sweep (``JobInfo``), written by the sweep before the point's job starts."""
        return self.path / "job.json"

    @property
    def config(self) -> Path:
        """The resolved config the point ran with."""
        return self.path / "m9_config.json"

    @property
    def entry(self) -> Path:
        """The point's journal entry (``PointRecord``): its canonical record."""
        return self.path / "outcome.json"

    @property
    def rank_outcome(self) -> Path:
        """A process ``k > 0`` of a multi-process point: its outcome, for process 0 (in ``rank_<k>/``)."""
        return self.path / "rank_outcome.json"

    def for_rank(self, rank: int) -> "PointDir":
        """Where process ``rank`` of a multi-process point runs its trials: here for 0, ``rank_<k>/`` else."""
        return self if rank == 0 else PointDir(self.path / f"rank_{rank}")

    def trials(self, repeats: int) -> list[TrialDir]:
        """Where each trial runs: the point's directory itself, or ``repeat_<i>/`` each when repeated."""
        if repeats == 1:
            return [TrialDir(self.path)]
        return [TrialDir(self.path / f"repeat_{i}") for i in range(repeats)]

