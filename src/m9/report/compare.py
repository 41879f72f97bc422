"""``m9 report --compare A B``: two sweeps side by side (an engine upgrade, a scheduler change): the stacks they ran
on when those differ, each matched point's status, throughput and pages, and what moved (the ceiling, the best
throughput, the failure kinds), a throughput difference judged against the spread of the points' repeats."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Optional

from m9.outcome.status import Status
from m9.record.journal import PointRecord
from m9.record.provenance import STACK
from m9.report import analysis, matrix, plots
from m9.report.document import Report

TOK_S = "round_avg_tok_s"


def stack(records: list[PointRecord]) -> dict[str, str]:
    """The versions a sweep's points ran with (params ``stack.*``); a library whose points disagree is ``mixed``."""
    seen: dict[str, set[str]] = {}
    for record in records:
        for key, value in record.params.items():
            if key.startswith("stack."):
                seen.setdefault(key.removeprefix("stack."), set()).add(str(value))
    order = ["python", *STACK]  # the store hands params back sorted by name; the journal as recorded
    named = sorted(seen, key=lambda name: (order.index(name) if name in order else len(order), name))
    return {name: seen[name].pop() if len(seen[name]) == 1 else "mixed" for name in named}


def spread(record: Optional[PointRecord]) -> Optional[tuple[float, float]]:
    """The lowest and highest throughput of a passing point's repeats (``trial.repeats``), or None."""
    if record is None or record.status != Status.PASS or f"{TOK_S}_min" not in record.metrics:
        return None
    return record.metrics[f"{TOK_S}_min"], record.metrics[f"{TOK_S}_max"]


def ratio(a: Optional[PointRecord], b: Optional[PointRecord]) -> tuple[Optional[float], Optional[bool]]:
    """B's throughput over A's (None unless both passed), and whether the two points' repeats overlap (None unless
    both have repeats)."""
    ta, tb = (r.metrics.get(TOK_S) if r is not None and r.status == Status.PASS else None for r in (a, b))
    if not ta or not tb:
        return None, None
    sa, sb = spread(a), spread(b)
    return tb / ta, (sa[0] <= sb[1] and sb[0] <= sa[1]) if sa is not None and sb is not None else None


def _spread_said(inside: Optional[bool]) -> str:
    return "no repeats to judge it by" if inside is None else f"{'inside' if inside else 'outside'} the repeats' spread"


def judged(a: Optional[PointRecord], b: Optional[PointRecord]) -> str:
    """The table's B/A cell: the ratio, and with repeats on both sides whether it is inside their spread."""
    r, inside = ratio(a, b)
    if r is None:
        return "-"
    return f"{r:.3f}" if inside is None else f"{r:.3f} ({_spread_said(inside)})"


def _matched(records: list[PointRecord], knob: Optional[str]) -> dict[tuple[Any, int], PointRecord]:
    """Points by (value along the knob, n-th point at that value): repeated values stay separate rows."""
    seen: Counter = Counter()
    keyed = {}
    for record in records:
        value = analysis.knob_value(record, knob) if knob else record.job_num
        keyed[(value, seen[value])] = record
        seen[value] += 1
    return keyed


def _cells(record: Optional[PointRecord]) -> list[str]:
    if record is None:
        return ["-", "-", "-"]
    tok = record.metrics.get(TOK_S) if record.status == Status.PASS else None
    pages = record.metrics.get("pages_in_use")
    return [matrix.status_label(record.outcome), f"{tok:.1f}" if tok else "-",
            f"{pages:g}/{record.max_pages}" if pages is not None else str(record.max_pages or "-")]


def stack_lines(a: Report, b: Report) -> list[str]:
    """The two stacks side by side when they differ; one line when they do not."""
    sa, sb = stack(a.records), stack(b.records)
    if sa == sb:
        said = ", ".join(f"{name} {v}" for name, v in sa.items()) or "not recorded"
        return ["## Stack", "", f"Both sweeps ran on the same stack: {said}.", ""]
    rows = [[name, sa.get(name, "-"), sb.get(name, "-"), "" if sa.get(name) == sb.get(name) else "changed"]
            for name in dict.fromkeys([*sa, *sb])]
    return ["## Stacks", "", matrix.table(["", "A", "B", ""], rows), ""]


def moved(a: Report, b: Report, knob: Optional[str]) -> str:
    """What changed from A to B, in one sentence: the stack, the ceiling, the best throughput, the failure kinds."""
    sa, sb = stack(a.records), stack(b.records)
    changed = [f"{n} {sa.get(n, '-')} -> {sb.get(n, '-')}" for n in dict.fromkeys([*sa, *sb]) if sa.get(n) != sb.get(n)]
    ba, bb = analysis.boundary(a.records, knob), analysis.boundary(b.records, knob)
    name = knob or "job"
    said = [f"the ceiling stayed at {name}={ba.ceiling}" if ba.ceiling == bb.ceiling
            else f"the ceiling moved from {name}={ba.ceiling} to {bb.ceiling}"]
    pa, pb = analysis.best_point(a.records), analysis.best_point(b.records)
    if pa is not None and pb is not None:
        r, inside = ratio(pa, pb)
        said.append(f"the best throughput went from {pa.metrics[TOK_S]:.1f} to {pb.metrics[TOK_S]:.1f} tok/s "
                    f"(x{r:.3f}, {_spread_said(inside)})")
    kinds = [dict(x.failure_kinds) or "none" for x in (ba, bb)]
    said.append(f"the failure kinds stayed {kinds[0]}" if kinds[0] == kinds[1]
                else f"the failure kinds went from {kinds[0]} to {kinds[1]}")
    return f"From A to B ({', '.join(changed) if changed else 'the same stack'}): {', '.join(said)}."


def compare(a: Report, b: Report, out_dir: Path) -> list[Path]:
    """Two sweeps side by side along A's knob; the markdown and one chart."""
    out_dir.mkdir(parents=True, exist_ok=True)
    knob = analysis.swept_knob(a.records) or analysis.swept_knob(b.records)
    va, vb = _matched(a.records, knob), _matched(b.records, knob)
    rows = []
    for key in sorted(set(va) | set(vb), key=lambda x: (x[0] is None, x)):
        value = key[0] if key[1] == 0 else f"{key[0]} (#{key[1] + 1})"
        rows.append([value, *_cells(va.get(key)), *_cells(vb.get(key)), judged(va.get(key), vb.get(key))])
    chart = plots.compare([(f"A {a.sweep_id}", a.records), (f"B {b.sweep_id}", b.records)], knob,
                          out_dir / "compare.png")
    lines = [f"# m9 compare: A {a.sweep_id} vs B {b.sweep_id}", "", *stack_lines(a, b), "## What moved", "",
             moved(a, b, knob), "",
             f"- A: {analysis.boundary(a.records, knob).statement()}",
             f"- B: {analysis.boundary(b.records, knob).statement()}", "", "## Points", "",
             matrix.table([knob or "job", "A status", f"A {TOK_S}", "A pages", "B status", f"B {TOK_S}", "B pages",
                           "B/A"], rows),
             "", "![compare](compare.png)", ""]
    md = out_dir / "compare.md"
    md.write_text("\n".join(lines))
    return [md, chart]
