"""``m9 report``: a sweep's matrix, boundary, throughput trend, predictions and plots, as markdown and PNGs.

    m9 report                      # the latest sweep in the tracking store (else the newest outputs/sweeps/*)
    m9 report 2026-11-28_21-10-28  # by sweep id, parent run id, or a sweep directory
    m9 report --compare A B        # two sweeps side by side

The files land in the sweep's directory (or ``outputs/reports/<sweep>``) and are attached to the sweep's parent run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from m9.config import TrackingConfig
from m9.outcome.sla import parse_sla
from m9.outcome.status import Status
from m9.record import sweep as sweep_record
from m9.record import tracking
from m9.record.journal import PointRecord, read_sweep, read_sweep_meta
from m9.report import analysis, matrix, plots
from m9.report import optimize as optimum_report
from m9.sweep.answer import SearchAnswer
from m9.sweep.optimum import OptimizeAnswer

SWEEPS_DIR = Path("outputs") / "sweeps"


@dataclass
class Sweep:
    """A sweep's points and where its record lives."""

    sweep_id: str
    entries: list[PointRecord]
    command: str = ""
    parent_run_id: Optional[str] = None
    out_dir: Optional[Path] = None
    answer: Optional[SearchAnswer] = None
    """A boundary search's own answer, when the sweep was one."""
    optimum: Optional[OptimizeAnswer] = None
    """An optimisation's own answer, when the sweep was one."""


def _store_exists(cfg: TrackingConfig) -> bool:
    uri = tracking.resolve_uri(cfg)
    return cfg.backend != "none" and (not uri.startswith("sqlite:///") or Path(uri[len("sqlite:///"):]).exists())


def load(ref: Optional[str], cfg: TrackingConfig, sweeps_dir: Path = SWEEPS_DIR) -> Sweep:
    """A sweep by directory, sweep id or parent run id; None: the latest. Raises LookupError when there is none."""
    if ref and Path(ref).is_dir():
        return _from_dir(Path(ref))
    if _store_exists(cfg):
        parent = tracking.find_sweep(cfg, ref)
        if parent is not None:
            tags = parent["tags"]
            out = Path(tags.get("output_dir", ""))
            if tags.get("output_dir") and out.is_dir():  # the journal is the canonical record, store or not
                return dataclasses.replace(_from_dir(out), parent_run_id=parent["run_id"])
            return Sweep(tags.get("sweep_id", parent["run_id"]), tracking.load_points(cfg, parent),
                         tags.get("command", ""), parent["run_id"], None)
    candidates = sorted(p for p in sweeps_dir.glob("*") if p.is_dir()) if sweeps_dir.is_dir() else []
    if ref:
        candidates = [p for p in candidates if p.name == ref]
    if not candidates:
        raise LookupError(f"no sweep {ref!r} in the tracking store or under {sweeps_dir}" if ref else
                          f"no sweeps in the tracking store or under {sweeps_dir}")
    return _from_dir(candidates[-1])


def _from_dir(path: Path) -> Sweep:
    meta = read_sweep_meta(path) or {}
    answer = SearchAnswer.from_json(meta["search"]) if SearchAnswer.readable(meta.get("search")) else None
    found = meta.get(OptimizeAnswer.FILE)
    optimum = OptimizeAnswer.from_json(found) if OptimizeAnswer.readable(found) else None
    return Sweep(path.name, read_sweep(path), meta.get("command", ""), meta.get("parent_run_id"), path, answer,
                 optimum)


def summary(sweep: Sweep) -> dict[str, Any]:
    """The sweep's headline facts: its counts and best point, and its boundary: a search's own answer (confirmed,
    per outer-grid point) for a search, else what its points say along the swept knob."""
    if sweep.answer is not None:
        found = sweep.answer.summary()
    elif sweep.optimum is not None:
        found = {**analysis.boundary(sweep.entries, None).facts(), **sweep.optimum.summary()}
    else:
        found = analysis.boundary(sweep.entries, analysis.swept_knob(sweep.entries)).facts()
    return {**analysis.summary(sweep.entries), **found}


def subject(sweep: Sweep, knob: Optional[str]) -> str:
    """What the sweep was, in a few words: the report's title, whatever its directory is called."""
    if sweep.answer is not None:
        return f"boundary search over {sweep.answer.knob} in {sweep.answer.low}..{sweep.answer.high}"
    if sweep.optimum is not None:
        return f"optimisation of {sweep.optimum.objective} over {', '.join(sweep.optimum.knobs)}"
    values = sorted({analysis.knob_value(e, knob) for e in sweep.entries}) if knob else []
    if knob and values:
        shown = ", ".join(map(str, values)) if len(values) <= 6 else f"{values[0]}..{values[-1]} ({len(values)} values)"
        return f"{knob} = {shown}"
    return f"{len(sweep.entries)} point{'s' if len(sweep.entries) != 1 else ''}"


def render(sweep: Sweep) -> str:
    """The report's markdown."""
    entries = sweep.entries
    knob = analysis.swept_knob(entries)
    s = summary(sweep)
    lines = [f"# m9: {subject(sweep, knob)}", "", f"Sweep `{sweep.sweep_id}`"
             + (f" in `{sweep.out_dir}`" if sweep.out_dir else "") + "  "]
    if sweep.command:
        lines.append(f"Command: `{sweep.command}`  ")
    if sweep.parent_run_id:
        lines.append(f"MLflow parent run: `{sweep.parent_run_id}`  ")
    answer = sweep.answer
    sla = parse_sla(list(answer.sla)) if answer else ()
    lines += [f"{s['n_points']} points: {s['n_pass']} pass, {s['n_fail']} fail, {s['n_rejected']} rejected; "
              f"swept knob: `{knob}`", "", "## Experiment matrix", "", matrix.render(entries, sla), ""]
    if answer:
        lines += ["## Search", "", f"Searched `{answer.knob}` in {answer.low}..{answer.high}, planner first; "
                  f"the ceiling and a non-deterministic first failure confirmed {answer.confirm}x"
                  + (f"; stable means pass and {' and '.join(f'`{c}`' for c in answer.sla)}" if answer.sla
                     else "") + ".", ""]
        lines += [f"- {r.label + ': ' if len(answer.rows) > 1 else ''}{r.boundary.statement()}" for r in answer.rows]
        lines += ["", matrix.search_table(answer), ""]
        if len(answer.rows) > 1:
            lines += ["![frontier](frontier.png)", ""]
    if sweep.optimum is not None:
        lines += optimum_report.section(sweep.optimum)
    lines += ["## Boundary", "", f"- {s['boundary']}"]
    if s.get("best_point"):
        lines.append(f"- best throughput: {s['best_point']} (round_avg_tok_s={s['best_round_avg_tok_s']:.1f})")
    lines += ["", "## Throughput trend", "", analysis.trend_statement(entries, knob), ""]
    ok = analysis.passing(entries, knob)
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
    preds = analysis.prediction_rows(entries)
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


def write(sweep: Sweep, out_dir: Path) -> list[Path]:
    """Write report.md and the plots into ``out_dir``; returns the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    knob = analysis.swept_knob(sweep.entries)
    about = subject(sweep, knob)
    thr = plots.throughput(sweep.entries, knob, out_dir / "throughput.png", f"Throughput: {about}")
    pgs = plots.pages(sweep.entries, knob, out_dir / "pages.png", f"KV pages: {about}")
    tfr = plots.throughput_frontier(sweep.entries, knob, out_dir / "throughput_frontier.png",
                                    f"Throughput frontier: {about}")
    files = [thr, pgs, tfr]
    if sweep.answer is not None and len(sweep.answer.rows) > 1:
        files.append(plots.frontier(sweep.answer, out_dir / "frontier.png", f"Ceiling per search: {about}"))
    if sweep.optimum is not None:
        files += optimum_report.plots(sweep.optimum, out_dir)
    md = out_dir / "report.md"
    md.write_text(render(sweep))
    return [md, *files]


def compare(a: Sweep, b: Sweep, out_dir: Path) -> list[Path]:
    """Two sweeps side by side along A's knob: status and throughput per value, and one chart."""
    out_dir.mkdir(parents=True, exist_ok=True)
    knob = analysis.swept_knob(a.entries) or analysis.swept_knob(b.entries)

    def by_value(entries):
        # (value, n-th point at that value): repeated values (probes, reruns) stay separate rows
        seen: dict[Any, int] = {}
        keyed = {}
        for e in entries:
            v = analysis.knob_value(e, knob) if knob else e.job_num
            keyed[(v, seen.get(v, 0))] = e
            seen[v] = seen.get(v, 0) + 1
        return keyed

    va, vb = by_value(a.entries), by_value(b.entries)
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
    chart = plots.compare([(f"A {a.sweep_id}", a.entries), (f"B {b.sweep_id}", b.entries)], knob,
                          out_dir / "compare.png")
    lines = [f"# m9 compare: A {a.sweep_id} vs B {b.sweep_id}", "",
             f"- A: {analysis.boundary(a.entries, knob).statement()}",
             f"- B: {analysis.boundary(b.entries, knob).statement()}", "",
             matrix.table([knob or "job", "A status", "A round_avg_tok_s", "B status", "B round_avg_tok_s", "B/A"],
                          rows),
             "", "![compare](compare.png)", ""]
    md = out_dir / "compare.md"
    md.write_text("\n".join(lines))
    return [md, chart]


def main(argv: Optional[list[str]] = None) -> int:
    """Command line of ``m9 report``."""
    p = argparse.ArgumentParser(prog="m9 report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", nargs="?", help="sweep id, parent run id or sweep directory (default: the latest)")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two sweeps side by side")
    p.add_argument("--uri", help="tracking URI (default: $MLFLOW_TRACKING_URI or outputs/mlflow.db)")
    p.add_argument("--experiment", default="m9", help="MLflow experiment (default: m9)")
    p.add_argument("--sweeps-dir", type=Path, default=SWEEPS_DIR, help="where sweep directories live")
    p.add_argument("--out", type=Path, help="output directory (default: the sweep's directory)")
    args = p.parse_args(argv)
    cfg = TrackingConfig(uri=args.uri, experiment=args.experiment)
    if _store_exists(cfg):
        try:  # a store that was down when a sweep ended gets its points before they are read
            sweep_record.catch_up(cfg)
        except Exception as exc:  # noqa: BLE001 - the store does not answer: the report reads the sweep folders
            print(f"[m9] warning: the tracking store does not answer ({type(exc).__name__}); reading what is there",
                  file=sys.stderr)
    try:
        if args.compare:
            a, b = (load(ref, cfg, args.sweeps_dir) for ref in args.compare)
            out = args.out or Path("outputs") / "reports" / f"compare_{a.sweep_id}_vs_{b.sweep_id}"
            files = compare(a, b, out)
        else:
            sweep = load(args.sweep, cfg, args.sweeps_dir)
            out = args.out or sweep.out_dir or Path("outputs") / "reports" / sweep.sweep_id
            files = write(sweep, out)
            if sweep.parent_run_id and _store_exists(cfg):
                tracking.log_artifacts(cfg, sweep.parent_run_id, files)
    except LookupError as exc:
        print(f"m9 report: error: {exc}", file=sys.stderr)
        return 2
    print(files[0].read_text())
    print(f"[m9] wrote {', '.join(str(f) for f in files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
