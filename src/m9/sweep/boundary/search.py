"""Boundary search along one integer knob: the largest value that is stable, the smallest that is not.

Pure logic, no Hydra and no engine: the sweeper feeds it what each trial showed (``Verdict``) and asks which values to try next.
It assumes what capacity knobs do (low values work, high values break) and checks that assumption instead of
trusting it: a pass seen above a failure is reported as non-monotone evidence, never hidden.

The strategy, for a range ``low..high``:

1. try ``low`` (the known-good end: if it fails there is no stable value), then ``high`` (if it passes there is no
   boundary in the range; if it passes while ``low`` fails, the knob does not behave like a capacity);
2. bisect between the largest stable value seen and the smallest unstable one;
3. confirm the answer: the ceiling must pass ``confirm`` times, and the first failure must fail ``confirm`` times
   unless it failed deterministically (the planner's rejection, out of pages, out of memory: the same config gives
   the same verdict, so a repeat would only cost time). A value that both passed and failed is flaky, and flaky is
   not stable.

With one trial per batch that is at most ``2 + ceil(log2(high - low)) + 2 * (confirm - 1)`` trials on a monotone
verdict. With a parallel launcher each batch probes several values, splitting the open interval evenly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from m9.outcome.ceiling import Boundary
from m9.outcome.status import Status
from m9.outcome.verdict import Verdict


@dataclass
class Search:
    """One boundary search over ``low..high`` (inclusive)."""

    low: int
    high: int
    confirm: int = 2
    """Agreeing trials needed at the ceiling and at a non-deterministic first failure."""
    batch: int = 1
    """Values to propose at once (a parallel launcher's width)."""
    max_trials: Optional[int] = None
    """Stop after this many trials even if unconfirmed (None: bounded only by the range)."""
    knob: Optional[str] = None
    """The key searched, named in the answer's statement."""
    plan_only: bool = False
    """The observations are the planner's verdicts, not trials (stable means accepted)."""
    seen: dict[int, list[Verdict]] = field(default_factory=dict)
    trials: int = 0

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"low={self.low} > high={self.high}")
        if self.confirm < 1 or self.batch < 1:
            raise ValueError("confirm and batch must be >= 1")

    def add(self, value: int, obs: Verdict) -> None:
        """Record what one trial at ``value`` said."""
        self.seen.setdefault(value, []).append(obs)
        self.trials += 1

    # --- what the evidence says -------------------------------------------------------------------------------

    def _stable(self, v: int) -> bool:
        return bool(self.seen.get(v)) and all(o.stable for o in self.seen[v])

    def _unstable(self, v: int) -> bool:
        return any(not o.stable for o in self.seen.get(v, ()))

    def _confirmed_stable(self, v: int) -> bool:
        return self._stable(v) and len(self.seen[v]) >= self.confirm

    def _confirmed_unstable(self, v: int) -> bool:
        obs = self.seen.get(v, [])
        fails = [o for o in obs if not o.stable]
        return bool(fails) and (any(o.deterministic for o in fails) or len(fails) >= self.confirm
                                or len(fails) < len(obs))  # a pass beside a failure: flaky, so not stable

    def _bracket(self) -> tuple[int, int]:
        """(largest stable value below the first unstable one, first unstable value); ``low - 1`` and
        ``high + 1`` stand for "none"."""
        unstable = [v for v in self.seen if self._unstable(v)]
        hi = min(unstable, default=self.high + 1)
        lo = max((v for v in self.seen if v < hi and self._stable(v)), default=self.low - 1)
        return lo, hi

    # --- what to try next -------------------------------------------------------------------------------------

    def next_values(self) -> list[int]:
        """Values to try next (a value may repeat, for confirmation); empty when the search is done."""
        if self.max_trials is not None and self.trials >= self.max_trials:
            return []
        return self._wanted()

    def _wanted(self) -> list[int]:
        lo, hi = self._bracket()
        if not self.seen:
            first = [self.low] + ([self.high] if self.batch > 1 and self.high > self.low else [])
            return first + self._spread(self.low, self.high, self.batch - len(first))
        if self.high not in self.seen:  # probe the top end: the answer when it passes, a contradiction when low fails
            return [self.high] + self._spread(lo, hi, self.batch - 1)
        if hi - lo > 1:
            return self._spread(lo, hi, self.batch)
        need: list[int] = []
        if lo >= self.low and not self._confirmed_stable(lo):
            need += [lo] * (self.confirm - len(self.seen[lo]))
        if hi <= self.high and not self._confirmed_unstable(hi):
            need += [hi] * (self.confirm - len(self.seen[hi]))
        return need[: self.batch]

    @staticmethod
    def _spread(lo: int, hi: int, n: int) -> list[int]:
        """Up to ``n`` distinct values strictly between ``lo`` and ``hi``, splitting the gap evenly."""
        if n <= 0 or hi - lo <= 1:
            return []
        n = min(n, hi - lo - 1)
        return sorted({lo + (hi - lo) * (i + 1) // (n + 1) for i in range(n)} - {lo, hi})

    # --- the answer -------------------------------------------------------------------------------------------

    def result(self) -> Boundary:
        """What the evidence says now: the first unstable value is a rejection when every trial there was one,
        else a runtime failure (or an SLA miss)."""
        lo, hi = self._bracket()
        fails = [o for o in self.seen.get(hi, ()) if not o.stable]
        rejected = bool(fails) and all(o.status == Status.REJECTED for o in fails)
        runtime = [o for o in fails if o.status != Status.REJECTED]
        signature = next((o.signature for o in runtime if o.deterministic), runtime[0].signature if runtime else "")
        flaky = tuple(sorted(v for v, obs in self.seen.items() if self._unstable(v) and any(o.stable for o in obs)))
        first = hi if hi <= self.high else None
        return Boundary(
            knob=self.knob,
            low=self.low,
            high=self.high,
            ceiling=lo if lo >= self.low else None,
            first_failure=first if not rejected else None,
            failure_kinds=dict(Counter(o.kind for o in runtime)) if first is not None else {},
            failure_signature=signature if first is not None else "",
            first_rejection=first if rejected else None,
            rejection_reason=fails[0].signature if rejected else "",
            non_monotone=tuple(sorted(v for v in self.seen if v > hi and self._stable(v))),
            flaky=flaky,
            exhausted=bool(self._wanted()),
            plan_only=self.plan_only,
        )
