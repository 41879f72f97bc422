"""``m9 report --compare A B``: two sweeps side by side along A's knob: status and throughput per value, and one
chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from m9.outcome.status import Status
from m9.report import analysis, matrix, plots
from m9.report.document import Report


def compare(a: Report, b: Report, out_dir: Path) -> list[Path]:
    """Two sweeps side by side along A's knob: status and throughput per value, and one chart."""
    out_dir.mkdir(parents=True, exist_ok=True)
    knob = analysis.swept_knob(a.records) or analysis.swept_knob(b.records)

    def by_value(records):
        # (value, n-th point at that value): repeated values (probes, reruns) stay separate rows
        seen: dict[Any, int] = {}
        keyed = {}
        for e in records:
            v = analysis.knob_value(e, knob) if knob else e.job_num
            keyed[(v, seen.get(v, 0))] = e
            seen[v] = seen.get(v, 0) + 1
        return keyed

    va, vb = by_value(a.records), by_value(b.records)
    rows = []
    for key in sorted(set(va) | set(vb), key=lambda x: (x[0] is None, x)):
        v = key[0] if key[1] == 0 else f"{key[0]} (#{key[1] + 1})"
        cells, tok = [v], []
        for side in (va, vb):
            e = side.get(key)
            if e is None:
                cells += ["-", "-"]
                continue
            cells.append(matrix.status_label(e.outcome))
            t = e.metrics.get("round_avg_tok_s") if e.status == Status.PASS else None
            cells.append(f"{t:.1f}" if t else "-")
            tok.append(t)
        cells.append(f"{tok[1] / tok[0]:.3f}" if len(tok) == 2 and all(tok) else "-")
        rows.append(cells)
    chart = plots.compare([(f"A {a.sweep_id}", a.records), (f"B {b.sweep_id}", b.records)], knob,
                          out_dir / "compare.png")
    lines = [f"# m9 compare: A {a.sweep_id} vs B {b.sweep_id}", "",
             f"- A: {analysis.boundary(a.records, knob).statement()}",
             f"- B: {analysis.boundary(b.records, knob).statement()}", "",
             matrix.table([knob or "job", "A status", "A round_avg_tok_s", "B status", "B round_avg_tok_s", "B/A"],
                          rows),
             "", "![compare](compare.png)", ""]
    md = out_dir / "compare.md"
    md.write_text("\n".join(lines))
    return [md, chart]
