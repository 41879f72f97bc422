"""What one point told a search: the one type both of m9's searches read (the boundary search: stable or not, and
whether a failure would repeat; the optimiser: the objective, feasible or not, and by how far each SLA condition is
missed)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional

from m9.outcome.outcome import Outcome
from m9.outcome.sla import Condition, misses
from m9.outcome.status import FailureKind, Status


@dataclass(frozen=True)
class Verdict:
    """A point's status, its failure kind (``FailureKind.SLA_MISS`` for a pass that missed the SLA), the objective's
    value, the one-line signature, and each SLA condition's shortfall."""

    status: Status
    """``pass``, ``fail`` or ``rejected`` (by the planner or the schema)."""
    failure_kind: Optional[FailureKind] = None
    """A failure's kind, or ``sla`` for a pass that missed an SLA condition; None for a stable pass or a rejection."""
    value: Optional[float] = None
    """The objective, when the search has one and the point recorded it."""
    signature: str = ""
    """The failure's signature, the planner's reason, or the SLA conditions missed."""
    sla: tuple[float, ...] = ()
    """Per SLA condition, how far it is missed relative to its threshold (> 0: missed, <= 0: room left)."""
    metrics: Mapping[str, float] = field(default_factory=dict)
    """The point's numeric metrics (what a report shows beside the objective)."""
    job: Optional[int] = None
    """The sweep's job that recorded it (None: said by the planner in this process, or known already)."""
    reused: bool = False
    """Adopted from an earlier sweep (same point key): it cost nothing now."""

    @classmethod
    def of(cls, outcome: Outcome, sla: tuple[Condition, ...] = (), objective: Optional[str] = None,
           job: Optional[int] = None, reused: bool = False) -> "Verdict":
        """A recorded point's verdict: a pass that misses any SLA condition is unstable, as a failure is (a planned
        point, ``trial.plan_only``, says only that the planner accepted it)."""
        metrics = {k: v for k, v in outcome.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if outcome.status != Status.PASS:
            return cls(outcome.status, outcome.failure_kind, None, outcome.signature, (), metrics, job, reused)
        missed = misses(sla, metrics)
        return cls(Status.PASS, FailureKind.SLA_MISS if missed else None,
                   metrics.get(objective) if objective else None, "; ".join(missed),
                   tuple(c.shortfall(metrics) for c in sla), metrics, job, reused)

    @classmethod
    def refused(cls, reason: str, job: Optional[int] = None) -> "Verdict":
        """The planner's (or the schema's) refusal: known for the price of arithmetic."""
        return cls(Status.REJECTED, signature=reason, job=job)

    @property
    def stable(self) -> bool:
        """The point passed and met every SLA condition."""
        return self.status == Status.PASS and self.failure_kind is None

    @property
    def feasible(self) -> bool:
        """Stable, with the objective recorded: what an optimiser may rank."""
        return self.stable and self.value is not None and all(s <= 0 for s in self.sla)

    @property
    def deterministic(self) -> bool:
        """Not stable, and the same config would say so every time (a rejection, or a failure that follows from the
        config): no repeat is needed to trust it."""
        return self.status == Status.REJECTED or (self.failure_kind is not None and self.failure_kind.deterministic)

    @property
    def flaky(self) -> bool:
        """A failure that may not repeat (a crash, NaNs, a hang, a lost job): the configuration may be tried again."""
        return self.status == Status.FAIL and not self.deterministic

    @property
    def kind(self) -> str:
        """What a report names: the failure kind (``sla`` for a missed SLA), ``rejected``, or '' for a stable pass."""
        if self.failure_kind is not None:
            return str(self.failure_kind)
        if self.status == Status.REJECTED:
            return str(Status.REJECTED)
        return str(FailureKind.CRASH) if self.status == Status.FAIL else ""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "metrics": dict(self.metrics)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Verdict":
        kind = data.get("failure_kind")
        return cls(**{**data, "status": Status(data["status"]), "failure_kind": FailureKind(kind) if kind else None,
                      "sla": tuple(data.get("sla", ()))})
