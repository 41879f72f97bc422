"""A boundary search's answer: one frozen type, kept in the sweep's record (``m9_sweep.json``, ``search.json``) and
shown through the answer protocol (``m9.record.answer.Answer``): its sentence, its facts, its table and plot."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional, Sequence

from m9.outcome.ceiling import Boundary
from m9.outcome.status import Status
from m9.record.journal import PointRecord
from m9.sweep.boundary.report import SearchView


@dataclass(frozen=True)
class SearchRow:
    """One search: a point of the outer grid, its boundary, and what finding it cost."""

    overrides: tuple[str, ...]
    """The outer grid's overrides that make this search (the searched knob is added to each probe)."""
    boundary: Boundary
    planner_ceiling: Optional[int]
    """The largest value the planner accepts (the runtime search's top)."""
    planner_probes: int
    """Plans made to find it (no trial)."""
    rejected_free: int
    """Probed values the planner refused: known for the price of arithmetic."""
    trials: int
    """Trials the runtime search ran (or reused)."""

    @property
    def label(self) -> str:
        return " ".join(self.overrides) or "default"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SearchRow":
        return cls(**{**data, "overrides": tuple(data["overrides"]), "boundary": Boundary.from_json(data["boundary"])})


@dataclass(frozen=True)
class SearchAnswer(SearchView):
    """What ``hydra/sweeper=boundary`` found, for every point of its outer grid."""

    name = "search"  # its file: search.json (a class attribute, not a field)
    knob: str
    low: int
    high: int
    confirm: int
    sla: tuple[str, ...]
    rows: tuple[SearchRow, ...]
    reused: int = 0
    """Trials adopted from earlier sweeps."""
    plan_only: bool = False

    @property
    def trials(self) -> int:
        return sum(r.trials for r in self.rows)

    def statement(self) -> str:
        """The answer in a sentence: the boundary of a single search, or each search's ceiling (a frontier), named
        by what sets it apart from the others."""
        if len(self.rows) == 1:
            return self.rows[0].boundary.statement()
        shared = set.intersection(*(set(r.overrides) for r in self.rows))
        parts = []
        for r in self.rows:
            b = r.boundary
            name = " ".join(o for o in r.overrides if o not in shared) or "default"
            stop = b.first_failure if b.first_failure is not None else b.first_rejection
            why = "/".join(sorted(b.failure_kinds)) if b.first_failure is not None else str(Status.REJECTED)
            parts.append(f"{name}: {b.ceiling if b.ceiling is not None else 'none'}"
                         + (f" ({self.knob}={stop} {why})" if stop is not None else ""))
        what = "planner-accepted (plan only: nothing ran)" if self.plan_only else "stable"
        return f"largest {what} {self.knob} per search: " + "; ".join(parts)

    def summary(self, records: Sequence[PointRecord] = ()) -> dict[str, Any]:
        """What the sweep's parent run shows: the boundary's facts (a single search) or the frontier, and the cost
        (the search's own, confirmed: its points are not read again)."""
        facts: dict[str, Any] = (self.rows[0].boundary.facts() if len(self.rows) == 1 else
                                 {"swept_knob": self.knob, "frontier": self.statement(), "non_monotone": str(any(
                                     r.boundary.non_monotone for r in self.rows)).lower()})
        return {**facts, "boundary": self.statement(), "search_trials": self.trials,
                "search_planner_probes": sum(r.planner_probes for r in self.rows),
                "search_rejected_free": sum(r.rejected_free for r in self.rows), "search_reused": self.reused}

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rows": [{**asdict(r), "boundary": r.boundary.to_json()} for r in self.rows]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SearchAnswer":
        return cls(**{**data, "sla": tuple(data["sla"]), "rows": tuple(SearchRow.from_json(r) for r in data["rows"])})
