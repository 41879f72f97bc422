"""A point's run: its trial, or its ``trial.repeats`` fresh trials one after another, combined; as one process, or as
process ``rank`` of several (``m9.run.multihost``): process 0 gathers every other process's outcome into the point's,
the others run the same trials beside it and leave their outcomes for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol

from m9.config import M9Config
from m9.inputs.prompts import Prompts
from m9.outcome.outcome import Outcome, not_run
from m9.outcome.repeats import combine
from m9.outcome.status import FailureKind, Status
from m9.plan import Plan
from m9.protocol import ProgressEvent
from m9.run import multihost
from m9.run.files import PointDir
from m9.run.progress import Display
from m9.run.trial import run_trial
from m9.run.workers import Workers

OnProgress = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class Where:
    """Where this process runs a point: its directory, its number in the sweep, and which of its processes this is."""

    point: PointDir
    job_num: int
    rank: int = 0
    processes: int = 1


class Means(Protocol):
    """What this process runs trials with: its session's warm worker, the prompts it built, its display."""

    workers: Workers
    prompts: Prompts

    @property
    def display(self) -> Display: ...


def run_trials(cfg: M9Config, plan: Plan, where: Where, means: Means,
               on_progress: Optional[OnProgress] = None) -> Outcome:
    """Process 0's run of the point: its trials, combined, and on a point of several processes, failed by the
    process that failed first. Progress events go to the display and to ``on_progress``."""
    outcome, peers = _trials(cfg, plan, where, means, on_progress)
    if peers is None:
        return outcome
    gathered = multihost.gather(where.point, where.processes, cfg.trial.timeout_s, peers)
    return multihost.combine(outcome, gathered, peers.last_beats(), replicas=cfg.mesh.hosts == "replicas")


def run_peer(cfg: M9Config, plan: Plan, where: Where, means: Means) -> Outcome:
    """Process ``where.rank > 0`` of a multi-process point: the same trials beside process 0, its outcome left for
    process 0 to record (nothing of its own goes to the journal or the store)."""
    multihost.clear(where.point, where.rank)
    outcome = not_run(cfg, plan)
    if outcome is not None:  # process 0 records the point as it sees it
        if not cfg.trial.plan_only:  # process 0 may be waiting for it: say at once why this process did not run
            multihost.leave(where.point, where.rank, Outcome(Status.FAIL, FailureKind.ENGINE_ERROR,
                                                             f"did not run here: {outcome.signature}"))
        return outcome
    mine = where.point.for_rank(where.rank)
    mine.path.mkdir(parents=True, exist_ok=True)
    print(f"[m9] point {where.job_num} rank {where.rank}/{where.processes}: running, log {mine.trials(1)[0].log}",
          flush=True)
    outcome, _ = _trials(cfg, plan, where, means, None)
    multihost.leave(where.point, where.rank, outcome)
    return outcome


def _trials(cfg: M9Config, plan: Plan, where: Where, means: Means,
            on_progress: Optional[OnProgress]) -> tuple[Outcome, Optional[multihost.Peers]]:
    """The point's trials in this process, combined, and (a point of several processes) the last trial's peers as
    this process watched them."""

    def progress(event: ProgressEvent) -> None:
        means.display.trial(event)
        if on_progress is not None:
            on_progress(event)

    trials, peers, repeats = [], None, cfg.trial.repeats
    for i, trial in enumerate(where.point.for_rank(where.rank).trials(repeats)):
        means.display.start_point(str(where.job_num) + (f" repeat {i + 1}/{repeats}" if repeats > 1 else ""),
                                  cfg.workload.n_rounds)
        peers = (multihost.Peers(where.point, where.rank, where.processes, i, repeats) if where.processes > 1
                 else None)
        blocking = peers if cfg.mesh.hosts == "global" else None  # a global mesh's engine waits on its peers
        trials.append(run_trial(cfg, plan, trial, means.workers, means.prompts, progress, where.processes, blocking))
    return (trials[0] if len(trials) == 1 else combine(trials)), peers
