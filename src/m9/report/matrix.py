"""The experiment matrix in the log's format: one markdown row per point."""

from __future__ import annotations

from typing import Any

from m9.outcome.outcome import Outcome
from m9.outcome.sla import Condition, misses
from m9.outcome.status import Status
from m9.record.journal import PointRecord

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


def _notes(outcome: Outcome, sla: tuple[Condition, ...], shared: tuple[str, ...] = ()) -> str:
    parts = [outcome.signature] if outcome.signature else []
    if outcome.status == Status.PASS:
        parts += [f"SLA miss: {m}" for m in misses(sla, outcome.metrics)]
        if "roofline_frac" in outcome.metrics:
            parts.append(roofline_note(outcome.metrics))
    if outcome.status == Status.PLANNED:
        m = outcome.metrics
        parts.append(f"predicted pages_in_use={m['predicted_pages_in_use']} "
                     f"round_total_generated={m['predicted_round_total_generated']}")
    parts += [n for n in outcome.notes if n not in shared]
    return "; ".join(p.replace("|", "\\|") for p in parts)


def roofline_note(metrics) -> str:
    """``roofline 0.42 of 2765 GB/s, 1.9 FLOP/B``: the decode's bandwidth use and arithmetic intensity."""
    return (f"roofline {metrics['roofline_frac']:.3g} of {metrics['bandwidth_gbps']:.4g} GB/s, "
            f"{metrics['arith_intensity']:.1f} FLOP/B")


def prompt_tokens(record: PointRecord) -> str:
    """Tokens per prompt as planned: ``16``, or ``9-14`` for text prompts of several lengths."""
    params = record.params
    return str(params.get("resolved.prompt_tokens") or params.get("workload.prompt_len", "-"))


def _value(metrics: dict[str, float], key: str, fmt: str) -> str:
    """A metric, with the spread of its repeats when the point was repeated: ``12.3 [11.9, 12.8]``."""
    text = fmt.format(metrics[key])
    if f"{key}_min" in metrics:
        text += f" [{fmt.format(metrics[key + '_min'])}, {fmt.format(metrics[key + '_max'])}]"
    return text


def common_overrides(records: list[PointRecord]) -> list[str]:
    """Overrides every point of a sweep shares (in the first point's order): said once, not in every row."""
    if len(records) < 2:
        return []
    shared = set.intersection(*(set(e.overrides) for e in records))
    return [o for o in records[0].overrides if o in shared]


def common_notes(records: list[PointRecord]) -> list[str]:
    """Notes every point of a sweep has (a warning the planner gives every point): said once, not in every row."""
    if len(records) < 2:
        return []
    shared = set.intersection(*(set(e.outcome.notes) for e in records))
    return [n for n in records[0].outcome.notes if n in shared]


def row(record: PointRecord, sla: tuple[Condition, ...] = (), common: tuple[str, ...] = (),
        notes: tuple[str, ...] = ()) -> tuple[str, ...]:
    """One point as matrix cells (a pass that misses the SLA says so in its notes; ``common`` overrides and
    ``notes`` every point shares are left out of its cells)."""
    metrics = record.metrics
    passed = record.status == Status.PASS
    own = [o for o in record.overrides if o not in common]
    return (
        str(record.job_num),
        "`" + (" ".join(own) or "default") + "`",
        or_dash(record.max_seqs),
        or_dash(record.mesh),
        or_dash(record.max_pages),  # unsized when the planner refused the point before building its prompts
        or_dash(record.prompts),
        prompt_tokens(record),
        status_label(record.outcome),
        _value(metrics, "round_total_s", "{:.3f}s") if passed else "-",
        _value(metrics, "round_avg_tok_s", "{:.1f}") if passed else "-",
        _notes(record.outcome, sla, notes),
    )


def render(records: list[PointRecord], sla: tuple[Condition, ...] = ()) -> str:
    """Markdown table of a sweep's points, under lines naming the overrides and the notes they all share; with
    repeats, throughput cells read ``median [min, max]``."""
    common, notes = tuple(common_overrides(records)), tuple(common_notes(records))
    aligns = ("---", "---", "---:", "---:", "---:", "---:", "---:", "---", "---:", "---:", "---")
    lines = [f"Every point: `{' '.join(common)}`", ""] if common else []
    lines += [f"Note on every point: {n}" for n in notes] + ([""] if notes else [])
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(row(e, sla, common, notes)) + " |" for e in records]
    return "\n".join(lines)


def or_dash(value: Any) -> str:
    """A cell: the value, or ``-`` for none."""
    return "-" if value is None else str(value)
