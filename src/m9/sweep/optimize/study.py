"""The optimiser's loop: Optuna's ask/tell over a ``Space``, with m9's knowledge of what a verdict means.

Pure of Hydra and the engine: the caller gives ``check`` (the planner: a rejection at zero cost, or None) and
``measure`` (a batch of configurations, run or found in the store), and gets every row and the confirmed answer.

- Feasibility is a constraint, never a fake score: ``planner`` (refused before launch), ``runtime`` (the point
  failed, any kind: truncated with ``length_fixed``, out of pages, a crash, ...) and one per SLA condition (how far
  it is missed). TPE ranks infeasible trials after feasible ones; the GP sampler models each constraint.
- A configuration is measured once. Proposed again, the sampler is told what is known, for free; only a flaky
  failure (crash, NaNs, a hang, an unexpected error, a lost job) earns one more measurement.
- A finite space up to ``space.MAX_ENUMERATED`` configurations is checked whole first: the planner's refusals and
  every configuration an earlier sweep measured (``lookup``) are told before the first proposal, so a killed run or
  a grid run earlier is continued, not repeated. Those measurements count against the budget of ``trials``.
- Then the best ``confirm`` candidates are measured again until each has ``repeats`` measurements, interleaved (so
  a drift of the machine does not favour one), and ranked by their median.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import optuna

from m9.outcome.status import Status
from m9.outcome.verdict import Verdict
from m9.sweep.optimize.answer import Candidate, TrialRow
from m9.sweep.optimize.sampler import Encoding, make_sampler, startup_trials
from m9.sweep.optimize.space import MAX_ENUMERATED, Params, Space

SAMPLERS = ("tpe", "gp", "random")
IDLE_LIMIT = {"tpe": 25, "random": 25, "gp": 2}
"""Proposals of known configurations in a row after which a finite space's next trial is drawn from the untried.
A GP proposal is a model fit (seconds), and once converged on a discrete space it proposes its incumbent again
and again (measured: 31 times in 80 asks); a TPE proposal costs milliseconds."""
STALL_LIMIT = {"tpe": 500, "random": 500, "gp": 50}
"""Proposals of known configurations in a row after which the search stops (the sampler has converged)."""


@dataclass(frozen=True)
class Settings:
    trials: int = 30
    """Measurements (run now or found in the store) before confirmation."""
    batch: int = 1
    """Configurations proposed at once (a parallel launcher's width)."""
    sampler: str = "tpe"
    seed: int = 0
    direction: str = "maximize"
    confirm: int = 3
    """Best candidates measured again (0: none)."""
    repeats: int = 3
    """Measurements of each candidate, the first included."""
    sla: tuple[str, ...] = ()
    """The SLA conditions' names, one constraint each."""


Check = Callable[[Params], Optional[Verdict]]
Measure = Callable[[list[Params], str], list[Verdict]]
Lookup = Callable[[list[Params]], list[Optional[Verdict]]]


class Loop:
    """One optimisation."""

    def __init__(self, space: Space, settings: Settings, check: Check, measure: Measure,
                 lookup: Optional[Lookup] = None, on_row: Optional[Callable[[TrialRow], None]] = None):
        self.space, self.settings, self.check, self.measure, self.lookup = space, settings, check, measure, lookup
        self.on_row = on_row or (lambda row: None)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(direction=settings.direction, sampler=make_sampler(settings.sampler, settings.seed, settings.trials, settings.batch))
        self.encoding = Encoding(space)
        self.dists = self.encoding.dists
        self.known: dict[tuple, list[Verdict]] = {}
        self.params: dict[tuple, Params] = {}
        self.rows: list[TrialRow] = []
        self.measured = 0
        self.proposals_known = 0
        self.stopped = ""
        self._rng = random.Random(settings.seed)
        self._values: list[float] = []
        size = space.size
        self._every = space.every() if size is not None and size <= MAX_ENUMERATED else None
        """Every configuration of a small finite space (None: too many, or an interval of floats)."""

    # --- what is known ----------------------------------------------------------------------------------------

    def _record(self, params: Params, verdict: Verdict, phase: str) -> None:
        key = self.space.key(params)
        self.known.setdefault(key, []).append(verdict)
        self.params.setdefault(key, dict(params))
        if verdict.status != Status.REJECTED:
            self.measured += phase != "confirm"
        if verdict.value is not None:
            self._values.append(verdict.value)
        row = TrialRow(len(self.rows), dict(params), self.space.label(params), phase, verdict)
        self.rows.append(row)
        self.on_row(row)

    def _settled(self, key: tuple) -> bool:
        """Known well enough not to measure again: anything but flaky failures only, short of two of them."""
        seen = self.known.get(key, [])
        return bool(seen) and not (all(v.flaky for v in seen) and len(seen) < 2)

    def summary(self, key: tuple) -> Verdict:
        """What the sampler is told of a configuration: the median of its feasible measurements when every one
        was feasible, else its first infeasible verdict."""
        seen = self.known[key]
        bad = [v for v in seen if not v.feasible]
        if bad:
            return bad[-1] if all(v.flaky for v in bad) else next(v for v in bad if not v.flaky)
        values = sorted(v.value for v in seen)
        return Verdict(Status.PASS, value=values[len(values) // 2], metrics=seen[0].metrics)

    def _constraints(self, verdict: Verdict) -> dict[str, float]:
        """Each <= 0 when met: refused by the planner, failed at runtime, each SLA condition's relative miss."""
        sla = verdict.sla or (0.0,) * len(self.settings.sla)
        return {"planner": float(verdict.status == Status.REJECTED), "runtime": float(verdict.status == Status.FAIL),
                **{f"sla:{name}": float(miss) for name, miss in zip(self.settings.sla, sla)}}

    def _value(self, verdict: Verdict) -> float:
        """The objective told: the measured value, else (refused, failed before measuring) the worst seen, so that
        a model of the objective is not bent by a made-up number; the constraints say it is infeasible."""
        if verdict.value is not None:
            return verdict.value
        if not self._values:
            return 0.0
        return min(self._values) if self.settings.direction == "maximize" else max(self._values)

    def _tell(self, trial: optuna.Trial, verdict: Verdict) -> None:
        for name, value in self._constraints(verdict).items():
            trial.set_constraint(name, value)
        if verdict.kind:
            trial.set_user_attr("kind", verdict.kind)
        self.study.tell(trial, self._value(verdict))

    def _seed(self, params: Params, verdict: Verdict) -> None:
        self._record(params, verdict, "seed")
        self.study.add_trial(optuna.trial.create_trial(
            params=self.encoding.to_study(params), distributions=self.dists, value=self._value(verdict),
            constraints=self._constraints(verdict), user_attrs={"kind": verdict.kind} if verdict.kind else None))

    # --- the loop ---------------------------------------------------------------------------------------------

    def run(self) -> tuple[list[TrialRow], list[Candidate], str]:
        """Search, then confirm. Returns every row, the candidates best first, and why the search stopped."""
        if self._every is not None:
            self._check_whole()
            self._start_randomly()
        while not self.stopped:
            self._step()
        return self.rows, self._confirm(), self.stopped

    def _check_whole(self) -> None:
        accepted = []
        for params in self._every:
            refused = self.check(params)
            if refused is not None:
                self._seed(params, refused)
            else:
                accepted.append(params)
        if self.lookup is not None and accepted:
            for params, found in zip(accepted, self.lookup(accepted)):
                if found is not None:
                    self._seed(params, found)

    def _start_randomly(self) -> None:
        """The sampler's random start drawn from the configurations the planner accepts. Its own would be skipped:
        the refusals told first count as trials, so a model of infeasible points alone would make the first
        proposals."""
        if self.settings.sampler == "random":
            return
        feasible = sum(self.summary(k).feasible for k in self.known)
        untried = self._untried()
        for params in self._rng.sample(untried, max(0, min(len(untried), startup_trials(self.settings.trials) - feasible))):
            self.study.enqueue_trial(self.encoding.to_study(params))

    def _step(self) -> None:
        """Ask until a batch of configurations to measure is found, measure it, and tell."""
        if self.measured >= self.settings.trials:
            self.stopped = f"budget of {self.settings.trials} measurements"
            return
        want = min(self.settings.batch, self.settings.trials - self.measured)
        batch: list[tuple[optuna.Trial, Params]] = []
        waiting: dict[tuple, list[optuna.Trial]] = {}
        idle = 0
        while len(batch) < want:
            if self._every is not None and not self._untried():
                if not batch:
                    self.stopped = f"every one of the {len(self._every)} configurations is known"
                break
            trial = self.study.ask(self.dists)
            params = self.encoding.to_space({k: trial.params[k] for k in self.dists})
            key = self.space.key(params)
            if key in waiting or any(self.space.key(p) == key for _, p in batch):
                self.proposals_known += 1
                waiting.setdefault(key, []).append(trial)  # told with the batch's measurement
            elif self._settled(key):
                self.proposals_known += 1
                idle += 1
                self._tell(trial, self.summary(key))
                if idle >= STALL_LIMIT[self.settings.sampler]:
                    self.stopped = (f"the sampler proposed only known configurations {idle} times in a row")
                    break
                if self._every is not None and idle % IDLE_LIMIT[self.settings.sampler] == 0 and self._untried():
                    self.study.enqueue_trial(self.encoding.to_study(self._rng.choice(self._untried())))  # stuck
                continue
            else:
                refused = self.check(params)
                if refused is not None:
                    self._record(params, refused, "search")
                    self._tell(trial, refused)
                    continue
                batch.append((trial, params))
            idle = 0
        if not batch:
            return
        verdicts = self.measure([p for _, p in batch], "search")
        for (trial, params), verdict in zip(batch, verdicts):
            self._record(params, verdict, "search")
            self._tell(trial, verdict)
            for other in waiting.pop(self.space.key(params), []):
                self._tell(other, verdict)

    def _untried(self) -> list[Params]:
        return [p for p in self._every or () if not self._settled(self.space.key(p))]

    # --- confirmation -----------------------------------------------------------------------------------------

    def _ranked(self) -> list[tuple]:
        sign = 1 if self.settings.direction == "maximize" else -1
        feasible = [k for k in self.known if self.summary(k).feasible]
        return sorted(feasible, key=lambda k: -sign * self.summary(k).value)

    def _confirm(self) -> list[Candidate]:
        top = self._ranked()[: max(self.settings.confirm, 1)] if self.settings.confirm else self._ranked()[:2]
        if self.settings.confirm:
            need = {k: max(0, self.settings.repeats - len(self.known[k])) for k in top}
            order = [k for i in range(max(need.values(), default=0)) for k in top if need[k] > i]  # interleaved
            if order:
                params = [self.params[k] for k in order]
                for p, verdict in zip(params, self.measure(params, "confirm")):
                    self._record(p, verdict, "confirm")
        out = [self._candidate(k) for k in top]
        held = [c for c in out if not c.failed]
        sign = 1 if self.settings.direction == "maximize" else -1
        return sorted(held, key=lambda c: -sign * c.median) + [c for c in out if c.failed]

    def _candidate(self, key: tuple) -> Candidate:
        seen = self.known[key]
        params = self.params[key]
        return Candidate(params=params, label=self.space.label(params), overrides=tuple(self.space.overrides(params)),
                         values=tuple(v.value for v in seen if v.feasible),
                         failed=sum(not v.feasible for v in seen))


def importance(space: Space, rows: Sequence[TrialRow], direction: str) -> dict[str, float]:
    """Which knob mattered most: Optuna's default importance evaluator over one trial per feasible configuration
    (its median). Empty with fewer than two such configurations or a single knob value."""
    by_key: dict[tuple, list[float]] = {}
    params: dict[tuple, Params] = {}
    for r in rows:
        if r.verdict.feasible:
            k = space.key(r.params)
            by_key.setdefault(k, []).append(r.verdict.value)
            params[k] = dict(r.params)
    if len(by_key) < 2:
        return {}
    study = optuna.create_study(direction=direction)
    encoding = Encoding(space)
    for k, values in by_key.items():
        values.sort()
        study.add_trial(optuna.trial.create_trial(params=encoding.to_study(params[k]), distributions=encoding.dists,
                                                  value=values[len(values) // 2]))
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError, ZeroDivisionError):  # every value the same, one knob constant, ...
        return {}
