"""An optimisation's evidence and answer: one frozen type per fact, kept in the sweep's record (``optimize.json``,
rewritten after every trial, and ``m9_sweep.json``) and shown through the answer protocol
(``m9.record.answer.Answer``). No Optuna: reading an answer back never imports it.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional, Sequence

from m9.outcome.status import Status
from m9.outcome.verdict import Verdict
from m9.record.journal import PointRecord
from m9.report.analysis import boundary
from m9.sweep.optimize.report import OptimizeView


@dataclass(frozen=True)
class TrialRow:
    """One row of the trial table: a measurement, a planner verdict, or a confirmation repeat."""

    number: int
    params: Mapping[str, Any]
    label: str
    phase: str
    """``search`` (proposed by the sampler), ``seed`` (known before the first proposal) or ``confirm``."""
    verdict: Verdict

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TrialRow":
        return cls(**{**data, "verdict": Verdict.from_json(data["verdict"])})


@dataclass(frozen=True)
class Candidate:
    """A configuration re-measured to trust its value."""

    params: Mapping[str, Any]
    label: str
    overrides: tuple[str, ...]
    values: tuple[float, ...]
    """Every feasible measurement of it (the search's, then the repeats)."""
    failed: int = 0
    """Repeats that failed or missed the SLA: a candidate that does not hold is not an answer."""

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> float:
        """max - min of its measurements (0 with one)."""
        return max(self.values) - min(self.values)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Candidate":
        return cls(**{**data, "overrides": tuple(data["overrides"]), "values": tuple(data["values"])})


@dataclass(frozen=True)
class OptimizeAnswer(OptimizeView):
    """What ``hydra/sweeper=optimize`` found."""

    name = "optimize"  # a class attribute, not a field
    """Its file in the sweep: the history, completed."""

    objective: str
    direction: str
    sampler: str
    seed: int
    knobs: tuple[str, ...]
    space_size: Optional[int]
    rows: tuple[TrialRow, ...]
    candidates: tuple[Candidate, ...]
    """The confirmed candidates, best first (the answer, then the runner-up ...)."""
    sla: tuple[str, ...] = ()
    rerun: str = ""
    """A command line that measures the best configuration again."""
    importance: Mapping[str, float] = field(default_factory=dict)
    """Which knob mattered most (Optuna's importance evaluator over the feasible measurements)."""
    proposals_known: int = 0
    """Proposals of configurations already measured: answered from memory, for free."""
    stopped: str = ""
    """Why the search stopped: its budget, the whole space measured, or the sampler proposing only known points."""
    plan_only: bool = False

    @property
    def best(self) -> Optional[Candidate]:
        return self.candidates[0] if self.candidates else None

    @property
    def runner_up(self) -> Optional[Candidate]:
        return self.candidates[1] if len(self.candidates) > 1 else None

    @property
    def tie(self) -> bool:
        """The best and the runner-up differ by less than either one's spread: no measured difference."""
        a, b = self.best, self.runner_up
        return a is not None and b is not None and abs(a.median - b.median) <= max(a.spread, b.spread)

    def count(self, what: str) -> int:
        v = [r.verdict for r in self.rows]
        return {"runs": sum(r.job is not None and not r.reused and r.status != Status.REJECTED for r in v),
                "reused": sum(r.reused for r in v),
                "rejected": sum(r.status == Status.REJECTED for r in v),
                "failed": sum(r.status == Status.FAIL for r in v)}[what]

    def statement(self) -> str:
        """The answer in a sentence."""
        if self.plan_only:
            return (f"plan only: {self.count('rejected')} of {len(self.rows)} configurations refused by the planner, "
                    "nothing ran")
        a, b = self.best, self.runner_up
        if a is None:
            return f"no feasible configuration in {len(self.rows)} trials ({self.stopped})"
        say = f"best {self.objective} {a.median:.1f} (median of {len(a.values)}, spread {a.spread:.1f}) at {a.label}"
        if b is not None:
            gap = "tie: inside the spread" if self.tie else f"{abs(a.median - b.median):.1f} ahead"
            say += f"; runner-up {b.median:.1f} at {b.label} ({gap})"
        return say

    def summary(self, records: Sequence[PointRecord] = ()) -> dict[str, Any]:
        """What the sweep's parent run shows: where its points stopped working, by job (an optimisation has no one
        knob), and the answer."""
        a = self.best
        facts: dict[str, Any] = {**boundary(list(records), None).facts(),"optimum": self.statement(), "optimize_trials": len(self.rows),
                                 "optimize_runs": self.count("runs"), "optimize_reused": self.count("reused"),
                                 "optimize_rejected_free": self.count("rejected"),
                                 "optimize_proposals_known": self.proposals_known, "optimize_stopped": self.stopped}
        if a is not None:
            facts.update({"best_value": a.median, "best_spread": a.spread, "best_config": a.label,
                          "best_overrides": " ".join(a.overrides), "best_rerun": self.rerun,
                          "best_tie": str(self.tie).lower()})
        return facts

    def pareto(self, x: str = "round_avg_tok_s", y: str = "per_seq_tok_s") -> list[TrialRow]:
        """The feasible measurements no other beats on both ``x`` and ``y`` (total against per-sequence speed)."""
        pts = [r for r in self.rows if r.verdict.feasible and x in r.verdict.metrics and y in r.verdict.metrics]

        def beaten(r: TrialRow) -> bool:
            a = r.verdict.metrics
            return any(o.verdict.metrics[x] >= a[x] and o.verdict.metrics[y] >= a[y]
                       and (o.verdict.metrics[x], o.verdict.metrics[y]) != (a[x], a[y]) for o in pts)

        return sorted((r for r in pts if not beaten(r)), key=lambda r: r.verdict.metrics[x])

    def best_so_far(self) -> list[tuple[int, float]]:
        """(measurement count, best feasible value so far) over the search's measurements, in order."""
        best, out, n = None, [], 0
        sign = 1 if self.direction == "maximize" else -1
        for r in self.rows:
            if r.phase == "confirm" or r.verdict.status == Status.REJECTED:
                continue
            n += 1
            if r.verdict.feasible and (best is None or sign * r.verdict.value > sign * best):
                best = r.verdict.value
            if best is not None:
                out.append((n, best))
        return out

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rows": [{**asdict(r), "verdict": r.verdict.to_json()} for r in self.rows]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "OptimizeAnswer":
        return cls(**{**data, "knobs": tuple(data["knobs"]), "sla": tuple(data.get("sla", ())),
                      "rows": tuple(TrialRow.from_json(r) for r in data["rows"]),
                      "candidates": tuple(Candidate.from_json(c) for c in data["candidates"])})
