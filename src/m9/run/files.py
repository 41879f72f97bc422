"""The files a point leaves, and where: one type for a point's directory, one for a trial's.

    <point>/                     PointDir: job.json (who it is), m9_config.json, record.json (the journal entry)
      [repeat_<i>/ | rank_<k>/]  a trial of a repeated point / the trial of process k of a multi-process point
        request.json             TrialRequest, written by the parent before the child starts the trial
        progress.jsonl           IterationEvent / RoundEvent lines, appended by the child while it decodes
        result.json              TrialResult, written once, whole, by the child
        trial.log                the child's output
"""

from __future__ import annotations

import errno
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from m9.protocol import TrialRequest, TrialResult


def write_json(path: Path, data: Any) -> Path:
    """Write JSON atomically (a reader never sees half a file); returns the path. A failed write leaves the old
    file as it was and no temporary behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1, default=str))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None:  # a failed write() names no file: say which
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    return path


_WRITE_FAILURES = {
    errno.ENOSPC: ("no space left on device", "free space"),
    errno.EDQUOT: ("disk quota exceeded", "free space"),
    errno.EROFS: ("read-only file system", "make it writable"),
    errno.EACCES: ("permission denied", "make it writable"),
    errno.EPERM: ("operation not permitted", "make it writable"),
    errno.ENOENT: ("the folder is gone", "give it back (or a new hydra.sweep.dir)"),
    errno.EIO: ("I/O error", "check the disk"),
}


_ANY_PATH = (errno.ENOSPC, errno.EDQUOT, errno.EIO)
"""Failures that say "the disk" wherever they happen; the others (a missing file, a permission) say so only of a
path in the folder being written (``under``): elsewhere they may be a read, and an error of their own."""


def write_failure(exc: BaseException, under: Optional[Path] = None) -> Optional[tuple[str, str]]:
    """A local write that failed for a reason of the machine, not of m9 (a full disk, a read-only or vanished
    folder, a permission): ``("no space left on device writing PATH", "free space")``, looked for along the
    exception's chain; None for any other error."""
    seen: Optional[BaseException] = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _WRITE_FAILURES:
            path = seen.filename or _open_file(seen)
            inside = under is None or (path is not None and Path(path).absolute().is_relative_to(under.absolute()))
            if seen.errno in _ANY_PATH or inside:
                reason, fix = _WRITE_FAILURES[seen.errno]
                return (f"{reason} writing {path}" if path else reason), fix
        seen = seen.__cause__ or seen.__context__
    return None


def _open_file(exc: BaseException) -> Optional[str]:
    """The file a failed ``write()`` was writing (its error names none): the open file object nearest to where it
    was raised (Hydra's ``with open(...) as file: file.write(...)``, pathlib's ``write_text``)."""
    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            if isinstance(value, io.IOBase) and isinstance(getattr(value, "name", None), str):
                return value.name
    return None


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
    def record(self) -> Path:
        """The point's journal entry (``PointRecord``): its canonical record."""
        return self.path / "record.json"

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

