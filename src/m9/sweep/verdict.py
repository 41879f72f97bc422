"""What a point's outcome means to a boundary search: stable or not, and whether a failure would repeat.

Stable is ``pass`` and every condition of the SLA, when the user sets one (``m9.outcome.sla``).
"""

from __future__ import annotations

from m9.outcome.outcome import Outcome
from m9.outcome.sla import Condition, misses
from m9.outcome.status import Status
from m9.sweep.search import Observation


def observe(outcome: Outcome, sla: tuple[Condition, ...] = ()) -> Observation:
    """The search's view of one point."""
    if outcome.status == Status.PLANNED:
        raise ValueError("a planned point says nothing about stability")
    missed = misses(sla, outcome.metrics) if outcome.status == Status.PASS else []
    if missed:
        return Observation(Status.PASS, signature="; ".join(missed), sla_missed=True)
    return Observation(outcome.status, outcome.failure_kind, outcome.signature)
