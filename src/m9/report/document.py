"""A sweep's report: its matrix, its answer's section (any sweeper's, through ``m9.record.answer.Answer``), its
boundary, throughput trend, roofline, predictions against measurements, and plots, as markdown and PNGs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from m9.outcome.sla import parse_sla
from m9.record.answer import Answer
from m9.record.journal import PointRecord
from m9.report import analysis, matrix, plots


@dataclass
class Report:
    """A sweep's points, its answer, and where its record lives."""

    sweep_id: str
    records: list[PointRecord]
    command: str = ""
    parent_run_id: Optional[str] = None
    out_dir: Optional[Path] = None
    answer: Optional[Answer] = None
    """The sweeper's own answer (a search's, an optimisation's), when it gave one."""

    @property
    def knob(self) -> Optional[str]:
        return analysis.swept_knob(self.records)

    @property
    def sla(self):
        """The SLA conditions its answer judged passes by (the matrix notes a pass that misses one)."""
        return parse_sla(list(self.answer.sla)) if self.answer is not None else ()

    def summary(self) -> dict[str, Any]:
        """The sweep's headline facts: its counts and best point, and its boundary: the answer's own (confirmed) when
        the sweeper gave one, else what its points say along the swept knob."""
        found = (self.answer.summary(self.records) if self.answer is not None
                 else analysis.boundary(self.records, self.knob).facts())
        return {**analysis.summary(self.records), **found}

    def subject(self) -> str:
        """What the sweep was, in a few words: the report's title, whatever its directory is called."""
        if self.answer is not None:
            return self.answer.title()
        knob = self.knob
        values = sorted({analysis.knob_value(e, knob) for e in self.records}) if knob else []
        if knob and values:
            shown = (", ".join(map(str, values)) if len(values) <= 6
                     else f"{values[0]}..{values[-1]} ({len(values)} values)")
            return f"{knob} = {shown}"
        return f"{len(self.records)} point{'s' if len(self.records) != 1 else ''}"


def render(report: Report) -> str:
    """The report's markdown."""
    records, knob, s = report.records, report.knob, report.summary()
    lines = [f"# m9: {report.subject()}", "", f"Sweep `{report.sweep_id}`"
             + (f" in `{report.out_dir}`" if report.out_dir else "") + "  "]
    if report.command:
        lines.append(f"Command: `{report.command}`  ")
    if report.parent_run_id:
        lines.append(f"MLflow parent run: `{report.parent_run_id}`  ")
    lines += [f"{s['n_points']} points: {s['n_pass']} pass, {s['n_fail']} fail, {s['n_rejected']} rejected; "
              f"swept knob: `{knob}`", "", "## Experiment matrix", "", matrix.render(records, report.sla), ""]
    if report.answer is not None:
        lines += report.answer.section(records)
    lines += ["## Boundary", "", f"- {s['boundary']}"]
    if s.get("best_point"):
        lines.append(f"- best throughput: {s['best_point']} (round_avg_tok_s={s['best_round_avg_tok_s']:.1f})")
    lines += ["", "## Throughput trend", "", analysis.trend_statement(records, knob), ""]
    ok = analysis.passing(records, knob)
    if ok:
        lines.append(matrix.table(
            [knob or "job", "round_total_s", "round_avg_tok_s", "decode_avg_tok_s", "round_total_generated"],
            [[analysis.knob_value(e, knob) if knob else e.job_num,
              f"{e.metrics['round_total_s']:.3f}", f"{e.metrics['round_avg_tok_s']:.1f}",
              f"{e.metrics['decode_avg_tok_s']:.1f}",
              int(e.metrics["round_total_generated"])] for e in ok]))
    roof = [e for e in ok if "roofline_frac" in e.metrics]
    if roof:
        lines += ["", "## Roofline", "", "Decode bytes per second (weights read once per step, plus each sequence's KV "
                  "context) over the chip's memory bandwidth; arithmetic intensity in FLOP/byte"
                  + (f" (ridge point {roof[0].metrics['ridge_intensity']:.0f})" if "ridge_intensity" in roof[0].metrics
                     else "") + ".", ""]
        lines.append(matrix.table(
            [knob or "job", "achieved GB/s", "bandwidth GB/s", "roofline_frac", "arith_intensity", "achieved TFLOP/s"],
            [[analysis.knob_value(e, knob) if knob else e.job_num, f"{e.metrics['achieved_gbps']:.2f}",
              f"{e.metrics['bandwidth_gbps']:.4g}", f"{e.metrics['roofline_frac']:.3g}",
              f"{e.metrics['arith_intensity']:.2f}", f"{e.metrics['achieved_tflops']:.4f}"] for e in roof]))
    preds = analysis.prediction_rows(records)
    lines += ["", "## Predicted vs measured", ""]
    if preds:
        lines.append(matrix.table(
            ["job", "pages predicted", "pages_in_use", "tokens predicted", "round_total_generated", "match"],
            [[r["job_num"], r["pages_predicted"], r["pages_measured"], r["tokens_predicted"], r["tokens_measured"],
              "yes" if (r["pages_predicted"], r["tokens_predicted"]) == (r["pages_measured"], r["tokens_measured"])
              else "**no**"] for r in preds]))
    else:
        lines.append("no point ran to a measurement")
    lines += ["", "## Plots", "", "![throughput](throughput.png)", "", "![pages](pages.png)", "",
              "![throughput frontier](throughput_frontier.png)", ""]
    return "\n".join(lines)


def write(report: Report, out_dir: Path) -> list[Path]:
    """Write report.md and the plots into ``out_dir``; returns the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    knob, about = report.knob, report.subject()
    files = [plots.throughput(report.records, knob, out_dir / "throughput.png", f"Throughput: {about}"),
             plots.pages(report.records, knob, out_dir / "pages.png", f"KV pages: {about}"),
             plots.throughput_frontier(report.records, knob, out_dir / "throughput_frontier.png",
                                       f"Throughput frontier: {about}")]
    if report.answer is not None:
        files += report.answer.plots(out_dir)
    md = out_dir / "report.md"
    md.write_text(render(report))
    return [md, *files]
