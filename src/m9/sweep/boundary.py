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

from m9 import config as schema
from m9.plan import make_plan
from m9.compose import BadInput, grid, parse_grid
from m9.sweep.driver import Driver
from m9.sweep.search import Observation, Search, SearchResult
from m9.outcome.sla import Condition, parse_sla
from m9.sweep.verdict import observe


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
    section, _, key = knob.partition(".")
    sections = {f.name: f.type for f in dataclasses.fields(schema.M9Config)}
    fields = {f.name: f.type for f in dataclasses.fields(getattr(schema, sections[section]))} if section in sections \
        else {}
    if key not in fields:
        raise BadInput(f"hydra.sweeper.knob={knob}: not a config key (e.g. engine.max_seqs)")
    if "int" not in str(fields[key]) or "bool" in str(fields[key]):
        raise BadInput(f"hydra.sweeper.knob={knob}: a search needs an integer knob, not {fields[key]}")
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
    rejection: str = ""

    def point(self, knob: str, value: int) -> list[str]:
        return [*self.overrides, f"{knob}={value}"]


def _plan_search(driver: Driver, spec: BoundarySpec, row: _Row) -> None:
    """Bisect on the planner's verdict (no trial), then record the first rejected value, and with
    ``trial.plan_only`` the planner's ceiling, as points of the sweep."""
    while values := row.planner.next_values():
        for v in values:
            plan = make_plan(driver.compose(row.point(spec.knob, v)))
            row.planner.add(v, Observation(True) if plan.accepted
                            else Observation(False, True, "rejected", "; ".join(plan.rejections)))
    found = row.planner.result()
    settled = [v for v in (found.first_failure, found.ceiling if driver.plan_only else None) if v is not None]
    if settled:
        driver.run([(row.point(spec.knob, v), driver.compose(row.point(spec.knob, v))) for v in settled], here=True)
    row.rejection = found.failure_signature
    if found.ceiling is not None and not driver.plan_only:
        row.runtime = Search(spec.low, found.ceiling, spec.confirm, spec.batch, spec.max_trials)


def _runtime_search(driver: Driver, spec: BoundarySpec, rows: list[_Row]) -> None:
    """Every row's next probes in one batch, until no row wants more."""
    while True:
        wanted = [(row, v) for row in rows if row.runtime is not None for v in row.runtime.next_values()]
        if not wanted:
            return
        points = [(row.point(spec.knob, v), driver.compose(row.point(spec.knob, v))) for row, v in wanted]
        for (row, v), outcome in zip(wanted, driver.run(points)):
            row.runtime.add(v, observe(outcome, spec.sla))


def _answer(spec: BoundarySpec, row: _Row, plan_only: bool) -> dict[str, Any]:
    """A row's result as recorded: the runtime search's, bounded above by the planner's first rejection."""
    planned = row.planner.result()
    found: SearchResult = row.runtime.result() if row.runtime is not None else planned
    if row.runtime is not None and found.first_failure is None and planned.first_failure is not None:
        found = dataclasses.replace(found, high=spec.high, first_failure=planned.first_failure,
                                    failure_kind="rejected", failure_signature=row.rejection)
    found = dataclasses.replace(found, high=spec.high)
    statement = found.statement(spec.knob)
    if plan_only:
        statement = f"the planner accepts through {spec.knob}={found.ceiling} (plan only: nothing ran)" + (
            f"; {spec.knob}={found.first_failure} is rejected ({found.failure_signature})"
            if found.first_failure is not None else "")
    rejected_free = sum(1 for obs in row.planner.seen.values() if not obs[0].stable)
    return {
        "overrides": row.overrides,
        "ceiling": found.ceiling,
        "first_failure": found.first_failure,
        "failure_kind": found.failure_kind,
        "failure_signature": found.failure_signature,
        "planner_ceiling": planned.ceiling,
        "planner_probes": row.planner.trials,
        "rejected_free": rejected_free,
        "trials": row.runtime.trials if row.runtime is not None else 0,
        "non_monotone": list(found.non_monotone),
        "flaky": list(found.flaky),
        "exhausted": found.exhausted,
        "statement": statement,
    }


def run(driver: Driver, spec: BoundarySpec, arguments: list[str], params: dict[str, str]) -> dict[str, Any]:
    """The whole search mode: check, open the record, search every row, close with the answer."""
    if any(k.lstrip("+~") == spec.knob for k in parse_grid(list(arguments))):
        raise BadInput(f"{spec.knob}: searched by hydra.sweeper.knob; give its range as hydra.sweeper.low / "
                       "hydra.sweeper.high instead of values")
    preset = [f"{k}={v}" for k, v in params.items() if k.lstrip("+~") != spec.knob]  # an experiment's grid
    rows = [_Row(point, Search(spec.low, spec.high, confirm=1)) for point in grid(parse_grid([*preset, *arguments]))]
    for row in rows:  # bad input anywhere in the outer grid stops the command before anything runs
        driver.check(row.point(spec.knob, spec.low))
        driver.compose(row.point(spec.knob, spec.high))
    driver.open([row.overrides for row in rows], None, "boundary")
    for row in rows:
        _plan_search(driver, spec, row)
    reused_before = driver.n_reused
    _runtime_search(driver, spec, rows)
    answers = [_answer(spec, row, driver.plan_only) for row in rows]
    summary = _summary(spec, answers, driver.n_reused - reused_before, driver.plan_only)
    return {"knob": spec.knob, "low": spec.low, "high": spec.high, "confirm": spec.confirm,
            "sla": [str(c) for c in spec.sla], "rows": answers, "summary": summary}


def _summary(spec: BoundarySpec, answers: list[dict[str, Any]], reused: int, plan_only: bool) -> dict[str, Any]:
    """What the parent run shows: the answer of a single search, or the frontier's (``reused``: trials adopted
    from earlier sweeps)."""
    out: dict[str, Any] = {
        "search_trials": sum(a["trials"] for a in answers),
        "search_planner_probes": sum(a["planner_probes"] for a in answers),
        "search_rejected_free": sum(a["rejected_free"] for a in answers),
        "search_reused": reused,
        "swept_knob": spec.knob,
        "non_monotone": str(any(a["non_monotone"] for a in answers)).lower(),
    }
    if len(answers) == 1:
        a = answers[0]
        out["boundary"] = a["statement"]
        out["ceiling"] = a["ceiling"]
        out["first_failure"] = (f"{spec.knob}={a['first_failure']} ({a['failure_kind']}: {a['failure_signature']})"
                                if a["first_failure"] is not None else None)
    else:  # name each search by what sets it apart from the others
        shared = set.intersection(*(set(a["overrides"]) for a in answers))
        parts = [f"{' '.join(o for o in a['overrides'] if o not in shared) or 'default'}: "
                 + (f"{a['ceiling']}" if a["ceiling"] is not None else "none")
                 + (f" ({spec.knob}={a['first_failure']} {a['failure_kind']})" if a["first_failure"] is not None else "")
                 for a in answers]
        what = "planner-accepted (plan only: nothing ran)" if plan_only else "stable"
        out["boundary"] = f"largest {what} {spec.knob} per search: " + "; ".join(parts)
        out["frontier"] = out["boundary"]
    return out

