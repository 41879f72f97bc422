"""What a point's outcome means to a boundary search: stable or not, and whether a failure would repeat.

Stable is ``pass`` and every condition of the SLA, when the user sets one (``m9.sla``).
"""

from __future__ import annotations

from m9.outcome.outcome import DETERMINISTIC_KINDS, FAIL, PASS, REJECTED, Outcome
from m9.outcome.sla import Condition, misses
from m9.sweep.search import Observation


def observe(outcome: Outcome, sla: tuple[Condition, ...] = ()) -> Observation:
    """The search's view of one point."""
    if outcome.status == PASS:
        missed = misses(sla, outcome.metrics)
        if missed:  # an SLA miss may be noise: it is confirmed by repeating, like a crash
            return Observation(False, False, "sla", "; ".join(missed))
        return Observation(True)
    if outcome.status == REJECTED:
        return Observation(False, True, REJECTED, outcome.signature)
    if outcome.status == FAIL:
        kind = outcome.failure_kind or "crash"
        return Observation(False, kind in DETERMINISTIC_KINDS, kind, outcome.signature)
    raise ValueError(f"a {outcome.status!r} point says nothing about stability")
