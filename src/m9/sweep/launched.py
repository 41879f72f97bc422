"""What a launcher gives the sweep, as types: where its points run (``Placement``), each point it brought back
(``Launched``), and a point's job that ended without the point's outcome (``LostJob``), which the sweep records as a
failed point instead of aborting the multirun."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from m9.outcome.outcome import Outcome
from m9.outcome.status import FailureKind


@dataclass(frozen=True)
class Placement:
    """Where a launcher runs a sweep's points, as the launching process can tell before they start."""

    device: str
    """The device the points decode on, as a point key names it (``cpu:... x2``, ``gpu:NVIDIA H100 x8``,
    ``slurm:[('partition', 'a3'), ...]``): never the launching host's, unless the points run on it."""
    processes: int = 1
    """Processes each point runs as, one per host (a SLURM job's nodes x tasks per node): what a global mesh needs
    one of per host of its slice."""
    here: bool = False
    """The points run in this process, one after another (Hydra's basic launcher)."""
    parallel: int = 4
    """Points the launcher runs at once: a search probes this many values per round."""


@dataclass(frozen=True)
class Launched:
    """A point of a sweep, as the sweep has it once it is known."""

    job: int
    """Its job number in this sweep."""
    outcome: Outcome
    adopted: bool = False
    """Measured by an earlier sweep and adopted (resume): nothing ran now."""


@dataclass(frozen=True)
class LostJob:
    """A point's job that ended without the point's outcome."""

    job_id: str
    state: str
    """The scheduler's state (SLURM's ``TIMEOUT``, ``CANCELLED by 0``, ``FAILED``, ``OUT_OF_MEMORY``,
    ``NODE_FAIL``, ...) or, on this host, ``INTERRUPTED``."""
    exit_code: str
    """The scheduler's exit code (SLURM's ``code:signal``) or the local process's return code."""
    detail: str = ""
    """The last line the launcher had about it."""
    logs: tuple[str, ...] = ()
    """The job's own stdout/stderr files, attached to its run."""

    @property
    def kind(self) -> FailureKind:
        """``job_timeout`` (past its time limit), ``job_oom`` (the scheduler's memory limit) or ``job_killed``."""
        if self.state.startswith("TIMEOUT") or "timed-out" in self.detail:
            return FailureKind.JOB_TIMEOUT
        if self.state.startswith("OUT_OF_MEMORY"):
            return FailureKind.JOB_OOM
        return FailureKind.JOB_KILLED

    @property
    def signature(self) -> str:
        return (f"job {self.job_id} ended {self.state} (exit {self.exit_code}) without a result"
                + (f": {self.detail}" if self.detail else ""))


def placement_of(launcher: Any) -> Placement:
    """Where ``launcher`` runs points: its own word (an m9 launcher's ``placement()``), else, for Hydra's basic
    launcher, here, one at a time, and for another launcher, this host's device (all that can be told of it)."""
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher

    from m9.record.provenance import local_device_kind

    own = getattr(launcher, "placement", None)
    if callable(own):
        return own()
    here = isinstance(launcher, BasicLauncher)
    return Placement(device=local_device_kind(), here=here, parallel=1 if here else 4)
