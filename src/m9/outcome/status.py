"""A point's status and, when it failed, what kind of failure: few and stable strings users filter on (the MLflow
``status`` and ``failure_kind`` tags, the matrix, the search), read by attribute everywhere else."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """What happened to a point."""

    PASS = "pass"
    FAIL = "fail"
    REJECTED = "rejected"
    """The planner refused it; it never started JAX."""
    PLANNED = "planned"
    """``trial.plan_only``: accepted by the planner, not run."""


class FailureKind(StrEnum):
    """How a point that ran failed."""

    OUT_OF_PAGES = "out_of_pages"
    """The engine raised "Out of free pages during allocation"."""
    OOM = "oom"
    """The runtime ran out of memory, or the child passed ``trial.memory_limit_gb``."""
    NAN = "nan"
    """Non-finite logits (the log's "Anomalies")."""
    CRASH = "crash"
    """The child died by a signal or exited without a result."""
    TIMEOUT = "timeout"
    """No result within ``trial.timeout_s``."""
    TRUNCATED = "truncated"
    """``length_fixed`` asked and a sequence came back short."""
    UNSERVED = "unserved"
    """A sequence came back empty or missing (a prompt the prefill did not admit)."""
    ENGINE_ERROR = "engine_error"
    """Any other exception."""
    JOB_KILLED = "job_killed"
    """The point's whole job ended without a result (``scancel``, a lost node, an unrequeued preemption)."""
    JOB_TIMEOUT = "job_timeout"
    """The job passed its SLURM time limit."""
    JOB_OOM = "job_oom"
    """SLURM's memory limit ended the job."""
    SLA_MISS = "sla"
    """Never a point's own kind: a pass that missed a search's SLA (``hydra.sweeper.sla``), as a search counts it
    beside the failures (``m9.outcome.verdict``)."""

    @property
    def deterministic(self) -> bool:
        """True when the kind follows from the config alone (page and memory arithmetic, the decode budget, prefill
        admission): the same point fails the same way every time, so one trial is trusted. The others (a crash,
        NaNs, a hang, an unexpected error) may be the hardware or the runtime having a bad moment, and are
        confirmed by repeating."""
        return self in _DETERMINISTIC

    @property
    def spares_worker(self) -> bool:
        """True when the failure cannot have hurt the worker process that ran the trial: the page table refused an
        allocation (a clean error out of the engine's own check, the engine dropped with the trial) or sequences
        came back short or empty (no error at all). Its runtime, devices and kept model are untouched, so a warm
        worker may run the next point (``m9.run.workers``)."""
        return self in _SPARE_WORKER


_SPARE_WORKER = frozenset({FailureKind.OUT_OF_PAGES, FailureKind.TRUNCATED, FailureKind.UNSERVED})
_DETERMINISTIC = frozenset({FailureKind.OUT_OF_PAGES, FailureKind.OOM, FailureKind.TRUNCATED, FailureKind.UNSERVED,
                            FailureKind.JOB_OOM})
