"""Optimisation mode: the fastest configuration of a space of knobs, every proposal planned before it may launch.

1. the space from Hydra's sweep syntax (``m9.sweep.optimize.space``), a preset's ``params`` first, the command line winning;
   bad input anywhere stops the command before anything runs;
2. the loop (``m9.sweep.optimize.study``): the planner refuses a configuration for free (recorded ``rejected``, told
   infeasible, never launched), a trial's failure is an infeasible verdict with its kind, ``pass`` means full length
   when ``workload.length_fixed=true``, and an SLA adds one constraint per condition;
3. the evidence: ``optimize.json`` rewritten after every trial; at the end the answer (best median, runner-up,
   spread, tie), the importance of each knob and a command line that reruns the best, on the sweep's parent run.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from typing import Optional

from m9.compose import BadInput
from m9.config import ConfigError, M9Config
from m9.outcome.sla import Condition, parse_sla
from m9.outcome.stats import metric_names
from m9.outcome.verdict import Verdict
from m9.run.files import write_json
from m9.sweep.driver import Driver
from m9.sweep.launched import Launched
from m9.sweep.optimize.answer import OptimizeAnswer, TrialRow
from m9.sweep.optimize.space import Params, Space, parse_space
from m9.sweep.optimize.study import SAMPLERS, Loop, Settings, importance

HISTORY = "optimize.json"


@dataclass(frozen=True)
class OptimizeSpec:
    """What to optimise, checked."""

    objective: str
    settings: Settings
    sla: tuple[Condition, ...]


def check_spec(objective: str, direction: str, sampler: str, seed: int, trials: int, batch: int, confirm: int,
               repeats: int, sla: list[str]) -> OptimizeSpec:
    """The sweeper's settings as a spec; a bad one raises BadInput naming the ``hydra.sweeper`` key."""
    if objective not in metric_names():
        raise BadInput(f"hydra.sweeper.objective={objective}: not a recorded metric (e.g. round_avg_tok_s, "
                       "decode_avg_tok_s, per_seq_tok_s)")
    if direction not in ("maximize", "minimize"):
        raise BadInput(f"hydra.sweeper.direction={direction}: maximize or minimize")
    if sampler not in SAMPLERS:
        raise BadInput(f"hydra.sweeper.sampler={sampler}: one of {', '.join(SAMPLERS)}")
    if sampler == "gp":
        try:
            import torch  # noqa: F401 - Optuna's GPSampler runs on torch
        except ImportError:
            raise BadInput("hydra.sweeper.sampler=gp: Optuna's GP sampler needs torch (pip install 'm9[gp]')") from None
    for key, value, least in (("trials", trials, 1), ("batch", batch, 1), ("confirm", confirm, 0),
                              ("repeats", repeats, 1)):
        if value < least:
            raise BadInput(f"hydra.sweeper.{key}={value} must be >= {least}")
    try:
        conditions = parse_sla(list(sla or ()))
    except ValueError as exc:
        raise BadInput(str(exc)) from exc
    return OptimizeSpec(objective, Settings(trials=trials, batch=batch, sampler=sampler, seed=seed,
                                            direction=direction, confirm=confirm, repeats=repeats,
                                            sla=tuple(str(c) for c in conditions)), conditions)


def verdict(point: Launched, spec: OptimizeSpec) -> Verdict:
    """The optimiser's view of one point: the objective for a pass, the constraints, and what to show."""
    return Verdict.of(point.outcome, spec.sla, spec.objective, point.job, point.adopted)


class _Points:
    """The loop's three callables over the driver: plan (a refusal recorded for free), look up, measure."""

    def __init__(self, driver: Driver, space: Space, spec: OptimizeSpec):
        self.driver, self.space, self.spec = driver, space, spec
        self.configs: dict[tuple, M9Config] = {}

    def check(self, params: Params) -> Optional[Verdict]:
        overrides = self.space.overrides(params)
        try:
            cfg = self.driver.compose(overrides)
        except ConfigError as exc:
            return Verdict.refused(str(exc), self.driver.settle(overrides).job)
        plan = self.driver.plan(cfg)
        if not plan.accepted:
            return Verdict.refused("; ".join(plan.rejections), self.driver.settle(overrides).job)
        self.configs[self.space.key(params)] = cfg
        return None

    def _points(self, params: list[Params]) -> list[tuple[list[str], M9Config]]:
        return [(self.space.overrides(p), self.configs[self.space.key(p)]) for p in params]

    def lookup(self, params: list[Params]) -> list[Optional[Verdict]]:
        return [None if p is None else verdict(p, self.spec) for p in self.driver.reuse(self._points(params))]

    def measure(self, params: list[Params], phase: str) -> list[Verdict]:
        return [verdict(p, self.spec) for p in self.driver.run(self._points(params))]


def _plan_only(driver: Driver, space: Space, spec: OptimizeSpec) -> OptimizeAnswer:
    """Every configuration settled by the planner (recorded rejected or planned), nothing run."""
    if space.size is None:
        raise BadInput("trial.plan_only=true: an optimisation over an interval of floats has no configurations to "
                       "list; give choice(...) or range(...) values")
    rows = []
    for i, params in enumerate(space.every()):
        overrides = space.overrides(params)
        try:
            said = verdict(driver.run([(overrides, driver.compose(overrides))], here=True)[0], spec)
        except ConfigError as exc:
            said = Verdict.refused(str(exc), driver.settle(overrides).job)
        rows.append(TrialRow(i, params, space.label(params), "seed", said))
    return _answer(space, spec, rows, [], "plan only", 0, plan_only=True)


def _answer(space: Space, spec: OptimizeSpec, rows, candidates, stopped: str, known: int,
            plan_only: bool = False) -> OptimizeAnswer:
    best = candidates[0] if candidates else None
    rerun = " ".join(["python", "-m", "m9", *(shlex.quote(o) for o in best.overrides)]) if best else ""
    s = spec.settings
    return OptimizeAnswer(objective=spec.objective, direction=s.direction, sampler=s.sampler, seed=s.seed,
                          knobs=tuple(k.key for k in space.knobs), space_size=space.size, rows=tuple(rows),
                          candidates=tuple(candidates), sla=s.sla, rerun=rerun,
                          importance=importance(space, rows, s.direction) if not plan_only else {},
                          proposals_known=known, stopped=stopped, plan_only=plan_only)


def run(driver: Driver, spec: OptimizeSpec, arguments: list[str], params: dict[str, str]) -> OptimizeAnswer:
    """The whole optimisation: check, open the record, search, confirm, and answer."""
    space = parse_space([*(f"{k}={v}" for k, v in params.items()), *arguments], driver.loader)
    first = space.every()[0] if space.size is not None else {k.key: k.choices[0] if k.choices else k.low
                                                            for k in space.knobs}
    try:
        driver.compose(space.overrides(first))  # a key, type or group the config does not have: bad input, now
    except ConfigError:
        pass  # a value the schema refuses: a rejected configuration, not bad input
    driver.open([list(space.fixed)], space.size if driver.plan_only else None, "optimize")
    if driver.plan_only:
        return _plan_only(driver, space, spec)
    points = _Points(driver, space, spec)
    rows: list[TrialRow] = []

    def history(row: TrialRow) -> None:
        rows.append(row)
        write_json(driver.sweep_dir / HISTORY, {"objective": spec.objective, "knobs": [k.key for k in space.knobs],
                                                "rows": [asdict(r) for r in rows]})

    loop = Loop(space, spec.settings, points.check, points.measure, points.lookup, on_row=history)
    all_rows, candidates, stopped = loop.run()
    return _answer(space, spec, all_rows, candidates, stopped, loop.proposals_known)
