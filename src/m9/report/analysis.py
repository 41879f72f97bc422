"""What a sweep found, from its point records (see ``journal``): the swept knob, the stable ceiling and the first
failure, the throughput trend, and predicted against measured. Pure Python; the report renders it."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Optional

from m9.outcome.ceiling import Boundary
from m9.outcome.status import Status
from m9.record.journal import PointRecord, derived_keys

# When several numeric knobs vary (scaled pages vary with max_seqs), the first of these that varies is "the" knob.
KNOB_PRIORITY = (
    "engine.max_seqs",
    "workload.num_prompts",
    "engine.max_pages",
    "scheduler.max_tokens_per_round",
    "scheduler.max_queued_tokens",
    "scheduler.max_rounds",
    "workload.max_new_tokens",
    "workload.prompt_len",
    "engine.page_size",
    "engine.max_seq_len",
)


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def swept_knob(records: list[PointRecord]) -> Optional[str]:
    """The numeric config key the sweep varies: one typed on the command line if any, else by priority. A key
    whose value m9 derived (pages sized to ``max_seqs``) follows the knob and is never it, unless typed."""
    typed = {o.split("=", 1)[0].lstrip("+~") for e in records for o in e.overrides}
    derived = set().union(*(derived_keys(e.params) for e in records)) - typed
    keys = {k for e in records for k in e.params if not k.startswith("resolved.")} - derived
    varying = sorted(
        k for k in keys
        if all(_numeric(e.params.get(k)) for e in records) and len({e.params.get(k) for e in records}) > 1
    )
    ranked = [k for k in KNOB_PRIORITY if k in varying] + [k for k in varying if k not in KNOB_PRIORITY]
    for key in ranked:
        if key in typed:
            return key
    return ranked[0] if ranked else None


def knob_value(record: PointRecord, knob: Optional[str]) -> Any:
    """The point's value of the swept knob (None without one)."""
    return record.params.get(knob) if knob else None


def _value_status(points: list[PointRecord]) -> Status:
    statuses = {p.status for p in points}
    return Status.FAIL if Status.FAIL in statuses else Status.REJECTED if Status.REJECTED in statuses else Status.PASS


def boundary(records: list[PointRecord], knob: Optional[str]) -> Boundary:
    """Stable ceiling, first failure and fast-reject boundary along ``knob`` (points that did not run and were not
    rejected, e.g. ``planned``, say nothing about the boundary and are left out)."""
    statuses = {e.status for e in records}
    plan_only = Status.PLANNED in statuses and statuses <= {Status.PLANNED, Status.REJECTED}
    if plan_only:  # a plan-only sweep: the planner's verdicts are its boundary
        records = [e.replace(outcome=dataclasses.replace(e.outcome, status=Status.PASS))
                   if e.status == Status.PLANNED else e for e in records]
    records = [e for e in records if e.status in (Status.PASS, Status.FAIL, Status.REJECTED)]
    by_value: dict[Any, list[PointRecord]] = {}
    for e in records:
        by_value.setdefault(knob_value(e, knob) if knob else e.job_num, []).append(e)
    values = tuple(sorted(by_value))
    status = {v: _value_status(by_value[v]) for v in values}
    ceiling = None
    for v in values:
        if status[v] != Status.PASS:
            break
        ceiling = v
    broken = [v for v in values if status[v] != Status.PASS]
    first_broken = broken[0] if broken else None
    fails = [e for e in records if e.status == Status.FAIL]
    rejections = [v for v in values if status[v] == Status.REJECTED]
    reason = next((p.outcome.signature for p in by_value[rejections[0]] if p.status == Status.REJECTED),
                  "") if rejections else ""
    signatures = Counter(e.outcome.signature for e in fails)
    return Boundary(
        knob=knob,
        low=values[0] if values else None,
        high=values[-1] if values else None,
        ceiling=ceiling,
        first_failure=next((v for v in values if status[v] == Status.FAIL), None),
        failure_kinds=dict(Counter(str(e.outcome.failure_kind) for e in fails)),
        failure_signature=signatures.most_common(1)[0][0] if signatures else "",
        first_rejection=rejections[0] if rejections else None,
        rejection_reason=reason,
        non_monotone=tuple(v for v in values if first_broken is not None and v > first_broken
                           and status[v] == Status.PASS),
        plan_only=plan_only,
    )


def passing(records: list[PointRecord], knob: Optional[str]) -> list[PointRecord]:
    """Passing points in knob order."""
    ok = [e for e in records if e.status == Status.PASS]
    return sorted(ok, key=lambda e: (knob_value(e, knob) if knob else e.job_num, e.job_num))


def best_point(records: list[PointRecord]) -> Optional[PointRecord]:
    """The passing point with the highest ``round_avg_tok_s``."""
    ok = [e for e in records if e.status == Status.PASS]
    return max(ok, key=lambda e: e.metrics["round_avg_tok_s"], default=None)


def trend_statement(records: list[PointRecord], knob: Optional[str]) -> str:
    """One sentence on how round time and throughput move across the passing points."""
    ok = passing(records, knob)
    if not ok:
        return "no passing points"
    times = [e.metrics["round_total_s"] for e in ok]
    tok_s = [e.metrics["round_avg_tok_s"] for e in ok]
    best = best_point(records)
    span = f"{knob}={knob_value(ok[0], knob)}..{knob_value(ok[-1], knob)}" if knob else f"{len(ok)} points"
    return (f"across {span}: round_total_s {min(times):.3f}-{max(times):.3f}s, round_avg_tok_s "
            f"{tok_s[0]:.1f} -> {tok_s[-1]:.1f} (best {max(tok_s):.1f} at job {best.job_num}"
            + (f", {knob}={knob_value(best, knob)})" if knob else ")"))


def prediction_rows(records: list[PointRecord]) -> list[dict[str, Any]]:
    """Predicted vs measured pages and tokens for every point that ran and measured."""
    rows = []
    for e in records:
        m = e.metrics
        if "pages_in_use" not in m:
            continue
        rows.append({
            "job_num": e.job_num,
            "pages_predicted": int(m["predicted_pages_in_use"]),
            "pages_measured": int(m["pages_in_use"]),
            "tokens_predicted": int(m["predicted_round_total_generated"]),
            "tokens_measured": int(m["round_total_generated"]),
        })
    return rows


def summary(records: list[PointRecord]) -> dict[str, Any]:
    """The sweep's counts and best point, as recorded on its parent run (its boundary comes from ``boundary`` or,
    for a search, from the search's own answer)."""
    best = best_point(records)
    counts = Counter(e.status for e in records)
    out: dict[str, Any] = {
        "n_points": len(records),
        "n_pass": counts.get(Status.PASS, 0),
        "n_fail": counts.get(Status.FAIL, 0),
        "n_rejected": counts.get(Status.REJECTED, 0),
    }
    if best is not None:
        out["best_point"] = f"job {best.job_num}: {' '.join(best.overrides) or 'default'}"
        out["best_round_avg_tok_s"] = best.metrics["round_avg_tok_s"]
    return out
