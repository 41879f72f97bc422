"""Where points stop working along one knob: the one type the analysis of a sweep's points and a boundary search
both return, stated in one sentence, in the log's words."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional

from m9.outcome.status import FailureKind


@dataclass(frozen=True)
class Boundary:
    """The stable ceiling along ``knob``, the first runtime failure and the first rejection above it, and any
    evidence that the knob does not behave like a capacity."""

    knob: Optional[str]
    """The config key (None: points told apart by job number)."""
    low: Any = None
    """The smallest value examined (None: nothing was)."""
    high: Any = None
    """The largest value examined, or the top of a searched range."""
    ceiling: Any = None
    """The largest value that, with every value examined below it, was stable (None: ``low`` already is not)."""
    first_failure: Any = None
    """The smallest value that ran and failed (or missed the SLA)."""
    failure_kinds: Mapping[str, int] = field(default_factory=dict)
    """Failing points per kind (``FailureKind`` values, and ``sla``)."""
    failure_signature: str = ""
    """The most telling signature of the failures."""
    first_rejection: Any = None
    """The smallest value the planner (or the schema) refused."""
    rejection_reason: str = ""
    """Why it was refused."""
    non_monotone: tuple[Any, ...] = ()
    """Values that were stable above the first one that was not."""
    flaky: tuple[Any, ...] = ()
    """Values that both passed and failed."""
    exhausted: bool = False
    """A search ran out of its trial budget before its answer was confirmed."""
    plan_only: bool = False
    """Nothing ran: stable means accepted by the planner."""

    def statement(self) -> str:
        """One sentence: ``stable through k=56; k=57+ fails at runtime (...); k=64 is rejected by the planner``."""
        k = self.knob or "point"
        if self.low is None:
            return "no point ran or was rejected"
        if self.first_failure is None and self.first_rejection is None:
            verb = "are accepted by the planner" if self.plan_only else "pass"
            parts = [f"all points {verb} ({k} {self.low}..{self.high}); no boundary in this range"]
        elif self.ceiling is None:
            parts = [f"no stable point: {k}={self.low} already fails"]
        elif self.plan_only:
            parts = [f"the planner accepts through {k}={self.ceiling} (plan only: nothing ran)"]
        else:
            parts = [f"stable through {k}={self.ceiling}"]
        if self.first_failure is not None:
            if set(self.failure_kinds) == {FailureKind.SLA_MISS}:
                parts.append(f"{k}={self.first_failure}+ misses the SLA ({self.failure_signature})")
            else:
                kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.failure_kinds.items()))
                parts.append(f"{k}={self.first_failure}+ fails at runtime ({kinds}; signature: "
                             f"{self.failure_signature})")
        if self.first_rejection is not None:
            parts.append(f"{k}={self.first_rejection} is rejected by the planner ({self.rejection_reason})")
        if self.non_monotone:
            parts.append(f"non-monotone: {k}={', '.join(map(str, self.non_monotone))} passed above the first failure")
        if self.flaky:
            parts.append(f"flaky (passed and failed): {k}={', '.join(map(str, self.flaky))}")
        if self.exhausted:
            parts.append("trial budget exhausted before the answer was confirmed")
        return "; ".join(parts)

    def facts(self) -> dict[str, Any]:
        """The boundary as a sweep's parent run records it (keys with nothing to say are None)."""
        k = self.knob
        return {
            "swept_knob": k,
            "boundary": self.statement(),
            "ceiling": self.ceiling if k else None,
            "first_failure": f"{k}={self.first_failure}" if k and self.first_failure is not None else None,
            "failure_kind": "/".join(sorted(self.failure_kinds)) or None,
            "failure_signature": self.failure_signature or None,
            "first_rejection": f"{k}={self.first_rejection}" if k and self.first_rejection is not None else None,
            "non_monotone": str(bool(self.non_monotone)).lower(),
        }

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "failure_kinds": dict(self.failure_kinds)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Boundary":
        return cls(**{**data, "non_monotone": tuple(data["non_monotone"]), "flaky": tuple(data["flaky"])})
