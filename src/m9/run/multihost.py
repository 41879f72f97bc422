"""A point run as several processes (one per host: SLURM tasks, say): how the processes watch each other, and how
process 0, which alone records, learns how every other process's trial went. Which process this is comes from the
launcher that started it (``JobInfo.rank``, ``JobInfo.processes``).

Each process runs the same trial in its own engine child, and the children form one JAX distributed runtime
(``jax.distributed.initialize`` reads the launcher's environment, a SLURM step's; gloo collectives on CPU), in one
of two modes (``mesh.hosts``): ``replicas``, host-data-parallel as Levanter's multi-host sampler runs them (every process holds
the model and its own KV pages on its local devices, so no process's decode waits on another's; the runtime still
ends every process some time after one dies), or ``global``, one mesh over every process's devices (one model, one
KV cache; every process calls the same jitted functions on identical requests, which the engine checks, and a
process that stops blocks the others inside a collective). ``max_pages`` is planned from the config alone, so it
is the same everywhere.

Nothing waits forever on a peer that stops. Every engine child beats (``TrialDir.heartbeat``); on a global mesh
each process, while its own trial runs, takes a peer that has not beaten for ``SILENCE_S`` as stopped, frozen or
gone (``Peers``) and kills its own engine; process 0 stops waiting for such a peer's outcome in either mode, and
fails the point with the rank whose engine stopped first. Process ``k > 0`` leaves its outcome in
``<point>/rank_k/``, or why it did not run. A process that dies outright ends the SLURM step (m9 runs
``srun --kill-on-bad-exit``), and the job comes back to the sweeper as lost, with SLURM's words on which task died;
the sweeper cancels a job whose other tasks linger after process 0 recorded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Optional

from m9.outcome.outcome import Outcome
from m9.outcome.status import FailureKind, Status
from m9.protocol import INIT_TIMEOUT_S, SILENCE_S
from m9.run.files import PointDir, write_json

_POLL_S = 0.5


def _mtime(path: Path) -> Optional[float]:
    """The file's modification time, read through an open (on NFS, close-to-open consistency revalidates the
    attributes, which a bare stat may serve from a cache for up to a minute); None when there is no file."""
    try:
        with open(path, "rb") as f:
            return os.fstat(f.fileno()).st_mtime
    except FileNotFoundError:
        return None


class Peers:
    """The same trial of the point's other processes, as this one watches them from when its own trial began.
    The processes of one attempt start within ``INIT_TIMEOUT_S`` of each other (else their runtime never forms),
    so files older than that are an earlier attempt's and do not count. Silence is timed on this host's clock,
    from when this process last saw a peer's heartbeat change: another host's clock is never compared with it."""

    def __init__(self, point: PointDir, rank: int, count: int, repeat: int, repeats: int):
        self.every = {r: point.for_rank(r).trials(repeats)[repeat] for r in range(count)}
        self.trials = {r: t for r, t in self.every.items() if r != rank}
        self.since, self.started = time.time(), time.monotonic()
        self.seen: dict[tuple[int, str], tuple[Optional[float], float]] = {}
        """(rank, file) -> (the mtime last seen, when this process first saw it: monotonic)."""

    def fresh(self, path: Path) -> Optional[float]:
        """The file's mtime when it is this attempt's, else None."""
        t = _mtime(path)
        return t if t is not None and t >= self.since - INIT_TIMEOUT_S else None

    def _unchanged_for(self, rank: int, what: str) -> tuple[Optional[float], float]:
        """(the file's fresh mtime or None, seconds of this trial it has stood unchanged, by this host's clock)."""
        t, now = self.fresh(getattr(self.trials[rank], what)), time.monotonic()
        last, since = self.seen.get((rank, what), (None, self.started))
        if t != last:
            last, since = t, now
            self.seen[(rank, what)] = (t, since)
        return t, now - since

    def silent(self, rank: int) -> Optional[str]:
        """Why peer ``rank`` is taken as stopped, frozen or gone, or None while it beats (or has ended its trial).
        A process that hangs with its interpreter free still beats: its trial's own timeout ends that."""
        if self._unchanged_for(rank, "result")[0] is not None:
            return None
        beat, quiet = self._unchanged_for(rank, "heartbeat")
        if beat is None:
            return (f"rank {rank}: its engine did not start within {INIT_TIMEOUT_S}s"
                    if time.monotonic() - self.started > INIT_TIMEOUT_S else None)
        if quiet > SILENCE_S:
            return f"rank {rank}: its engine stopped answering (no heartbeat for {quiet:.0f}s)"
        return None

    def first_silent(self) -> Optional[str]:
        """The first peer taken as stopped, frozen or gone, or None."""
        return next((why for why in map(self.silent, self.trials) if why), None)

    def given_up(self, rank: int) -> bool:
        """Process 0 waits no longer for peer ``rank``'s outcome: it is silent, or it ended its trial
        ``SILENCE_S`` ago and has left no outcome since (its own process stopped)."""
        ended, quiet = self._unchanged_for(rank, "result")
        return quiet > SILENCE_S if ended is not None else bool(self.silent(rank))

    def last_beat(self, rank: int) -> float:
        """When process ``rank``'s engine last beat, as the shared file system dates it (its trial's end, when it
        ended); -inf: it never did."""
        trial = self.every[rank]
        return max((t for t in (self.fresh(trial.result), self.fresh(trial.heartbeat)) if t is not None),
                   default=float("-inf"))

    def last_beats(self) -> dict[int, float]:
        """``last_beat`` of every process, this one's too."""
        return {rank: self.last_beat(rank) for rank in self.every}


def leave(point: PointDir, rank: int, outcome: Outcome) -> None:
    """Process ``rank > 0``: its outcome, for process 0 (written whole, or not at all)."""
    path = point.for_rank(rank).rank_outcome
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, outcome.to_json())


def clear(point: PointDir, rank: int) -> None:
    """Process ``rank > 0``, before its trial: what an earlier attempt left for process 0."""
    point.for_rank(rank).rank_outcome.unlink(missing_ok=True)


def gather(point: PointDir, count: int, wait_s: float, peers: Optional[Peers] = None) -> dict[int, Outcome | None]:
    """Process 0: every other process's outcome (None: none came), waiting at most ``wait_s`` for them, and not
    for a peer that ``peers`` gives up on."""
    deadline = time.monotonic() + wait_s
    found: dict[int, Outcome | None] = {}
    given_up: set[int] = set()
    while True:
        for rank in range(1, count):
            path = point.for_rank(rank).rank_outcome
            if rank in found or rank in given_up:
                continue
            if path.exists() and (peers is None or peers.fresh(path) is not None):
                found[rank] = Outcome.from_json(json.loads(path.read_text()))
            elif peers is not None and peers.given_up(rank):
                given_up.add(rank)
        if len(found) + len(given_up) == count - 1 or time.monotonic() > deadline:
            return {rank: found.get(rank) for rank in range(1, count)}
        time.sleep(_POLL_S)


def combine(own: Outcome, peers: dict[int, Outcome | None], last_beat: Optional[dict[int, float]] = None,
            replicas: bool = True) -> Outcome:
    """The point's outcome: process 0's measurements, failed by the process that failed first (rank named).
    One process's failure can fail the others (a global mesh's collectives; on either mode, the runtime ends every
    process some time after one dies): with ``last_beat`` (when each process's engine last beat) the first is the
    one whose engine stopped first, else the lowest failing rank; process 0's own failure is named first when it
    follows from the config (then it is the same everywhere). ``replicas``: each process decoded its own copy, and
    their throughputs add up."""
    metrics = {**own.metrics, "process_count": 1 + len(peers)}
    per_process = [own.metrics.get("round_avg_tok_s")] + [p.metrics.get("round_avg_tok_s") for p in peers.values()
                                                         if p is not None]
    if replicas and all(v is not None for v in per_process) and len(per_process) == 1 + len(peers):
        metrics["all_processes_round_avg_tok_s"] = sum(per_process)  # every replica's tokens per second
    failed: dict[int, Outcome | None] = {rank: p for rank, p in peers.items() if p is None or p.status != Status.PASS}
    if own.status != Status.PASS:
        failed[0] = own
    if not failed:
        return dataclasses.replace(own, metrics=metrics)
    if last_beat is None or (0 in failed and own.failure_kind.deterministic):
        first = min(failed)
    else:
        first = min(failed, key=lambda rank: (last_beat.get(rank, float("-inf")), rank))
    peer = failed[first]
    then = f"; rank 0: {own.signature}" if first != 0 and 0 in failed else ""
    if peer is None:
        return dataclasses.replace(own, status=Status.FAIL, failure_kind=FailureKind.TIMEOUT, metrics=metrics,
                                   signature=f"rank {first}: left no outcome (stopped, hung or gone){then}")
    return dataclasses.replace(own, status=Status.FAIL, failure_kind=peer.failure_kind, metrics=metrics,
                               signature=f"rank {first}: {peer.signature}{then}")
