"""The experiment matrix in the log's format: one markdown row per point."""

from __future__ import annotations

from typing import Any

from m9.outcome.outcome import Outcome
from m9.outcome.sla import Condition, misses
from m9.outcome.status import Status
from m9.record.journal import PointRecord
from m9.sweep.answer import SearchAnswer

COLUMNS = ("ID", "overrides", "max_seqs", "mesh", "max_pages", "prompts", "prompt_tokens", "status", "round_total_s",
           "round_avg_tok_s", "notes")


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def status_label(outcome: Outcome) -> str:
    """``PASS``, ``REJECTED`` or ``FAIL (kind)``."""
    if outcome.status == Status.FAIL:
        return f"FAIL ({outcome.failure_kind})"
    return outcome.status.upper()


def _notes(outcome: Outcome, sla: tuple[Condition, ...]) -> str:
    parts = [outcome.signature] if outcome.signature else []
    if outcome.status == Status.PASS:
        parts += [f"SLA miss: {m}" for m in misses(sla, outcome.metrics)]
        if "roofline_frac" in outcome.metrics:
            parts.append(roofline_note(outcome.metrics))
    if outcome.status == Status.PLANNED:
        m = outcome.metrics
        parts.append(f"predicted pages_in_use={m['predicted_pages_in_use']} "
                     f"round_total_generated={m['predicted_round_total_generated']}")
    parts += list(outcome.notes)
    return "; ".join(p.replace("|", "\\|") for p in parts)


def roofline_note(metrics) -> str:
    """``roofline 0.42 of 2765 GB/s, 1.9 FLOP/B``: the decode's bandwidth use and arithmetic intensity."""
    return (f"roofline {metrics['roofline_frac']:.3g} of {metrics['bandwidth_gbps']:.4g} GB/s, "
            f"{metrics['arith_intensity']:.1f} FLOP/B")


def prompt_tokens(entry: PointRecord) -> str:
    """Tokens per prompt as planned: ``16``, or ``9-14`` for text prompts of several lengths."""
    params = entry.params
    return str(params.get("resolved.prompt_tokens") or params.get("workload.prompt_len", "-"))


def _value(metrics: dict[str, float], key: str, fmt: str) -> str:
    """A metric, with the spread of its repeats when the point was repeated: ``12.3 [11.9, 12.8]``."""
    text = fmt.format(metrics[key])
    if f"{key}_min" in metrics:
        text += f" [{fmt.format(metrics[key + '_min'])}, {fmt.format(metrics[key + '_max'])}]"
    return text


def common_overrides(entries: list[PointRecord]) -> list[str]:
    """Overrides every point of a sweep shares (in the first point's order): said once, not in every row."""
    if len(entries) < 2:
        return []
    shared = set.intersection(*(set(e.overrides) for e in entries))
    return [o for o in entries[0].overrides if o in shared]


def row(entry: PointRecord, sla: tuple[Condition, ...] = (), common: tuple[str, ...] = ()) -> tuple[str, ...]:
    """One point as matrix cells (a pass that misses the SLA says so in its notes; ``common`` overrides are left
    out of the overrides cell)."""
    metrics = entry.metrics
    passed = entry.status == Status.PASS
    own = [o for o in entry.overrides if o not in common]
    return (
        str(entry.job_num),
        "`" + (" ".join(own) or "default") + "`",
        _or_dash(entry.max_seqs),
        _or_dash(entry.mesh),
        _or_dash(entry.max_pages),  # unsized when the planner refused the point before building its prompts
        _or_dash(entry.prompts),
        prompt_tokens(entry),
        status_label(entry.outcome),
        _value(metrics, "round_total_s", "{:.3f}s") if passed else "-",
        _value(metrics, "round_avg_tok_s", "{:.1f}") if passed else "-",
        _notes(entry.outcome, sla),
    )


def render(entries: list[PointRecord], sla: tuple[Condition, ...] = ()) -> str:
    """Markdown table of a sweep's points, under a line naming the overrides they all share; with repeats,
    throughput cells read ``median [min, max]``."""
    common = tuple(common_overrides(entries))
    aligns = ("---", "---", "---:", "---:", "---:", "---:", "---:", "---", "---:", "---:", "---")
    lines = [f"Every point: `{' '.join(common)}`", ""] if common else []
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(row(e, sla, common)) + " |" for e in entries]
    return "\n".join(lines)


def search_table(answer: SearchAnswer) -> str:
    """A boundary search's answer, one row per search (several rows: the frontier along the outer grid): the
    ceiling, the first value that was not stable and why (a failure kind, ``sla``, or ``rejected`` by the planner)."""
    lines = [f"| searched | {answer.knob} ceiling | first not stable | why | signature | trials | planner probes "
             "(rejected for free) | notes |", "|---|---:|---:|---|---|---:|---:|---|"]
    for r in answer.rows:
        b = r.boundary
        notes = [f"non-monotone: passed at {', '.join(map(str, b.non_monotone))}"] if b.non_monotone else []
        notes += [f"flaky: {', '.join(map(str, b.flaky))}"] if b.flaky else []
        notes += ["trial budget exhausted"] if b.exhausted else []
        failed = b.first_failure is not None
        cells = [f"`{r.label}`", _or_dash(b.ceiling), _or_dash(b.first_failure if failed else b.first_rejection),
                 "/".join(sorted(b.failure_kinds)) if failed else str(Status.REJECTED) if b.first_rejection is not None else "-",
                 (b.failure_signature if failed else b.rejection_reason) or "-", str(r.trials),
                 f"{r.planner_probes} ({r.rejected_free})", "; ".join(notes)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)
