"""A point run as several processes (SLURM tasks, one per host or more): who this process is, and how process 0,
which alone records, learns how every other process's trial went.

Each process runs the same decode in its own engine child, and the children form one JAX distributed runtime
(``jax.distributed.initialize`` reads the SLURM step's environment; gloo collectives on CPU). The decode is
host-data-parallel, the way Levanter's multi-host sampler runs replicas: every process holds the model and its
own KV pages (``max_pages`` planned once, identical everywhere) on its local devices, so no process's decode waits
on another's. Process ``k > 0`` leaves its outcome in ``<point>/rank_k/``; process 0 waits for them, within a
bound, and fails the point with the first failing process's rank and signature. A process that dies outright
ends the SLURM step (m9 runs ``srun --kill-on-bad-exit``), and the job comes back to the sweeper as lost, with
SLURM's words on which task died.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

from m9.outcome.outcome import Outcome
from m9.outcome.status import FailureKind, Status
from m9.run.files import PointDir, write_json

_POLL_S = 0.5


def processes() -> tuple[int, int]:
    """(this process's rank, the number of processes) of the point: a SLURM step's task id and task count, or
    (0, 1) outside a multi-task step."""
    count = int(os.environ.get("SLURM_STEP_NUM_TASKS") or os.environ.get("SLURM_NTASKS") or 1)
    if count <= 1 or "SLURM_STEP_ID" not in os.environ:
        return 0, 1
    return int(os.environ.get("SLURM_PROCID", 0)), count


def leave(point: PointDir, rank: int, outcome: Outcome) -> None:
    """Process ``rank > 0``: its outcome, for process 0 (written whole, or not at all)."""
    write_json(point.for_rank(rank).rank_outcome, outcome.to_json())


def gather(point: PointDir, count: int, wait_s: float) -> dict[int, Outcome | None]:
    """Process 0: every other process's outcome, waiting at most ``wait_s`` for them (None: none came)."""
    deadline = time.monotonic() + wait_s
    found: dict[int, Outcome | None] = {}
    while True:
        for rank in range(1, count):
            path = point.for_rank(rank).rank_outcome
            if rank not in found and path.exists():
                found[rank] = Outcome.from_json(json.loads(path.read_text()))
        if len(found) == count - 1 or time.monotonic() > deadline:
            return {rank: found.get(rank) for rank in range(1, count)}
        time.sleep(_POLL_S)


def combine(own: Outcome, peers: dict[int, Outcome | None], wait_s: float) -> Outcome:
    """The point's outcome: process 0's measurements, failed by the first process that failed (rank named)."""
    metrics = {**own.metrics, "process_count": 1 + len(peers)}
    per_process = [own.metrics.get("round_avg_tok_s")] + [p.metrics.get("round_avg_tok_s") for p in peers.values()
                                                         if p is not None]
    if all(v is not None for v in per_process) and len(per_process) == 1 + len(peers):
        metrics["all_processes_round_avg_tok_s"] = sum(per_process)  # every replica's tokens per second
    if own.status != Status.PASS:
        return dataclasses.replace(own, metrics=metrics, signature=f"rank 0: {own.signature}")
    for rank, peer in peers.items():
        if peer is None:
            return dataclasses.replace(own, status=Status.FAIL, failure_kind=FailureKind.CRASH, metrics=metrics,
                                       signature=f"rank {rank}: no outcome within {wait_s:g}s")
        if peer.status != Status.PASS:
            return dataclasses.replace(own, status=Status.FAIL, failure_kind=peer.failure_kind, metrics=metrics,
                                       signature=f"rank {rank}: {peer.signature}")
    return dataclasses.replace(own, metrics=metrics)
