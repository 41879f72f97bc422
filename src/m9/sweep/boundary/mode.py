"""Boundary search mode: find the largest stable value of one knob, planner first, then with real trials.

For each point of the outer grid (the other swept overrides: one search per row, a frontier when there are several):

1. the planner's ceiling, by bisecting on the plan's verdict alone (pure arithmetic: nothing is launched); the first
   value it rejects is recorded as a rejected point, for free;
2. the runtime ceiling, by searching ``low..planner ceiling`` with real trials (``search.Search``), several values
   per batch on a parallel launcher, every row's probes launched together;
3. the answer: ceiling, first failure with its kind and signature, trials run, points rejected for free, and any
   non-monotone or flaky evidence, printed, written to the sweep's record and report, and set on its parent run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from m9.compose import BadInput, expand_overrides, key_of
from m9.config import ConfigError, is_integer_type, key_type
from m9.outcome.sla import Condition, parse_sla
from m9.outcome.status import Status
from m9.outcome.verdict import Verdict
from m9.sweep.boundary.answer import SearchAnswer, SearchRow
from m9.sweep.boundary.search import Search
from m9.sweep.driver import Driver


@dataclass(frozen=True)
class BoundarySpec:
    """What to search, checked."""

    knob: str
    low: int
    high: int
    confirm: int
    sla: tuple[Condition, ...]
    max_trials: Optional[int]
    batch: int


def check_spec(knob: str, low: int, high: int, confirm: int, sla: Any, max_trials: Optional[int],
               batch: int) -> BoundarySpec:
    """The sweeper's settings as a spec; a bad one raises BadInput naming the ``hydra.sweeper`` key."""
    written = key_type(knob)
    if written is None:
        raise BadInput(f"hydra.sweeper.knob={knob}: not a config key (e.g. engine.max_seqs)")
    if not is_integer_type(written):
        raise BadInput(f"hydra.sweeper.knob={knob}: a search needs an integer knob, not {written}")
    if low > high:
        raise BadInput(f"hydra.sweeper.low={low} must be <= hydra.sweeper.high={high}")
    if confirm < 1:
        raise BadInput(f"hydra.sweeper.confirm={confirm} must be >= 1")
    if max_trials is not None and max_trials < 1:
        raise BadInput(f"hydra.sweeper.max_trials={max_trials} must be >= 1")
    if batch < 1:
        raise BadInput(f"hydra.sweeper.batch={batch} must be >= 1")
    try:
        conditions = parse_sla(list(sla or ()))
    except ValueError as exc:
        raise BadInput(str(exc)) from exc
    return BoundarySpec(knob, low, high, confirm, conditions, max_trials, batch)


@dataclass
class _Row:
    """One search: a point of the outer grid."""

    overrides: list[str]
    planner: Search
    runtime: Optional[Search] = None

    def point(self, knob: str, value: int) -> list[str]:
        return [*self.overrides, f"{knob}={value}"]


def _planned(driver: Driver, overrides: list[str]) -> Verdict:
    """The planner's verdict on a probe (a value the schema refuses is a rejection too): no trial."""
    try:
        plan = driver.plan(driver.compose(overrides))
    except ConfigError as exc:
        return Verdict.refused(str(exc))
    return Verdict(Status.PASS) if plan.accepted else Verdict.refused("; ".join(plan.rejections))


def _plan_search(driver: Driver, spec: BoundarySpec, row: _Row) -> None:
    """Bisect on the planner's verdict (no trial), then record the first rejected value, and with
    ``trial.plan_only`` the planner's ceiling, as points of the sweep."""
    while values := row.planner.next_values():
        for v in values:
            row.planner.add(v, _planned(driver, row.point(spec.knob, v)))
    found = row.planner.result()
    settled = [v for v in (found.first_rejection, found.ceiling if driver.plan_only else None) if v is not None]
    for v in settled:
        driver.settle(row.point(spec.knob, v))
    if found.ceiling is not None and not driver.plan_only:
        row.runtime = Search(spec.low, found.ceiling, spec.confirm, spec.batch, spec.max_trials, knob=spec.knob)


def _runtime_search(driver: Driver, spec: BoundarySpec, rows: list[_Row]) -> None:
    """Every row's next probes in one batch, until no row wants more."""
    while True:
        wanted = [(row, v) for row in rows if row.runtime is not None for v in row.runtime.next_values()]
        if not wanted:
            return
        runnable = []
        for row, v in wanted:  # the planner bisected: a value it never probed may be one the schema refuses
            try:
                runnable.append((row, v, driver.compose(row.point(spec.knob, v))))
            except ConfigError as exc:
                driver.settle(row.point(spec.knob, v))
                row.runtime.add(v, Verdict.refused(str(exc)))
        launched = driver.run([(row.point(spec.knob, v), cfg) for row, v, cfg in runnable])
        for (row, v, _), point in zip(runnable, launched):
            row.runtime.add(v, Verdict.of(point.outcome, spec.sla))


def _answer(spec: BoundarySpec, row: _Row) -> SearchRow:
    """A row's answer: the runtime search's boundary over the range, with the planner's first rejection above it."""
    planned = row.planner.result()
    found = planned
    if row.runtime is not None:  # the first rejection: the runtime search's own (a probe refused in its job), else
        searched = row.runtime.result()  # the planner's above the range it searched
        first = searched if searched.first_rejection is not None else planned
        found = dataclasses.replace(searched, high=spec.high, first_rejection=first.first_rejection,
                                    rejection_reason=first.rejection_reason)
    return SearchRow(overrides=tuple(row.overrides), boundary=found, planner_ceiling=planned.ceiling,
                     planner_probes=row.planner.trials,
                     rejected_free=sum(1 for obs in row.planner.seen.values() if not obs[0].stable),
                     trials=row.runtime.trials if row.runtime is not None else 0)


def run(driver: Driver, spec: BoundarySpec, arguments: list[str], params: dict[str, str]) -> SearchAnswer:
    """The whole search mode: check, open the record, search every row, and answer."""
    if any(key_of(o) == spec.knob for o in arguments):
        raise BadInput(f"{spec.knob}: searched by hydra.sweeper.knob; give its range as hydra.sweeper.low / "
                       "hydra.sweeper.high instead of values")
    preset = [f"{k}={v}" for k, v in params.items() if key_of(k) != spec.knob]  # an experiment's grid
    rows = [_Row(point, Search(spec.low, spec.high, confirm=1, knob=spec.knob, plan_only=driver.plan_only))
            for point in expand_overrides([*preset, *arguments], driver.loader)]
    for row in rows:  # bad input anywhere in the outer grid stops the command before anything runs
        driver.check(row.point(spec.knob, spec.low))
        try:
            driver.compose(row.point(spec.knob, spec.high))
        except ConfigError:
            pass  # a value the schema refuses: a rejected probe, not bad input
    driver.open([row.overrides for row in rows], None, "boundary")
    for row in rows:
        _plan_search(driver, spec, row)
    reused_before = driver.n_reused
    _runtime_search(driver, spec, rows)
    return SearchAnswer(knob=spec.knob, low=spec.low, high=spec.high, confirm=spec.confirm,
                        sla=tuple(str(c) for c in spec.sla), rows=tuple(_answer(spec, row) for row in rows),
                        reused=driver.n_reused - reused_before, plan_only=driver.plan_only)
