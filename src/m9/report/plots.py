"""PNG plots of a sweep: throughput along the swept knob (pass / fail / rejected marked apart) and KV pages in
use against capacity; and two sweeps' throughput on one chart."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any, Optional

from m9.outcome.status import Status
from m9.record.journal import PointRecord
from m9.report.analysis import knob_value

_STYLE = {
    Status.PASS: dict(marker="o", color="tab:green", label="pass"),
    Status.FAIL: dict(marker="X", color="tab:red", label="fail (runtime)", s=90),
    Status.REJECTED: dict(marker="v", color="tab:gray", label="rejected (planner)", s=70),
    Status.PLANNED: dict(marker="D", color="tab:blue", label="planned (not run)", s=50),
}


def import_in_background() -> threading.Thread:
    """matplotlib imported on a thread of its own (a second or more), started when a sweep opens: its points keep
    this process waiting on engine workers, and the report it ends with then draws at once."""
    thread = threading.Thread(target=pyplot, name="m9-plots-import", daemon=True)
    thread.start()
    return thread


def pyplot():
    """matplotlib's pyplot, writing files only."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    return plt


def finish(plt, fig, ax, xlabel: str, ylabel: str, title: str, path: Path) -> Path:
    """Label, title and save a figure; returns its path."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _x(records: list[PointRecord], knob: Optional[str]) -> tuple[list[Any], str]:
    values = [knob_value(e, knob) for e in records]
    if knob is None or len(set(values)) < len(values):
        return [e.job_num for e in records], "point (job number)"  # the knob does not tell points apart
    return values, knob


def throughput(records: list[PointRecord], knob: Optional[str], path: Path, title: str) -> Path:
    """round_avg_tok_s and decode_avg_tok_s of passing points; failures and rejections marked on the x axis."""
    plt = pyplot()
    xs, xlabel = _x(records, knob)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ok = sorted((x, e) for x, e in zip(xs, records) if e.status == Status.PASS)
    if ok:
        px = [x for x, _ in ok]
        ax.plot(px, [e.metrics["round_avg_tok_s"] for _, e in ok], "-", color="tab:green", alpha=0.6)
        ax.scatter(px, [e.metrics["round_avg_tok_s"] for _, e in ok], zorder=3,
                   **{**_STYLE[Status.PASS], "label": "round_avg_tok_s (pass)"})
        spread = [(x, e.metrics) for x, e in ok if "round_avg_tok_s_min" in e.metrics]
        if spread:  # repeated points: the median is drawn, min..max as an error bar
            mid = [m["round_avg_tok_s"] for _, m in spread]
            ax.errorbar([x for x, _ in spread], mid, fmt="none", ecolor="tab:green", capsize=4, zorder=2,
                        yerr=[[y - m["round_avg_tok_s_min"] for y, (_, m) in zip(mid, spread)],
                              [m["round_avg_tok_s_max"] - y for y, (_, m) in zip(mid, spread)]],
                        label="min..max over repeats")
        ax.plot(px, [e.metrics["decode_avg_tok_s"] for _, e in ok], "--", marker=".",
                color="tab:olive", label="decode_avg_tok_s (pass)")
    for status in (Status.FAIL, Status.REJECTED, Status.PLANNED):
        bad = [x for x, e in zip(xs, records) if e.status == status]
        if bad:
            ax.scatter(bad, [0] * len(bad), zorder=4, clip_on=False, **_STYLE[status])
    for x, e in zip(xs, records):
        if e.status == Status.FAIL:
            ax.annotate(e.outcome.failure_kind, (x, 0), textcoords="offset points", xytext=(0, 9),
                        ha="center", fontsize=8, color="tab:red")
    return finish(plt, fig, ax, xlabel, "throughput (tokens/s)", title, path)


def pages(records: list[PointRecord], knob: Optional[str], path: Path, title: str) -> Path:
    """Measured and predicted pages in use against the cache's capacity (max_pages)."""
    plt = pyplot()
    xs, xlabel = _x(records, knob)
    order = sorted(range(len(records)), key=lambda i: xs[i])
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    capacity = [records[i].max_pages if records[i].max_pages is not None else math.nan for i in order]  # unsized
    ax.plot([xs[i] for i in order], capacity, ":", marker="_", markersize=22,
            markeredgewidth=2, color="tab:blue", label="capacity (max_pages)")
    measured = [(xs[i], records[i]) for i in order if "pages_in_use" in records[i].metrics]
    if measured:
        ax.scatter([x for x, _ in measured], [e.metrics["pages_in_use"] for _, e in measured],
                   marker="o", color="tab:green", zorder=3, label="pages_in_use (measured, after decode)")
    predicted = [(xs[i], records[i]) for i in order if records[i].status in (Status.PASS, Status.FAIL)
                 and records[i].metrics.get("predicted_pages_in_use")]
    if predicted:
        ax.scatter([x for x, _ in predicted], [e.metrics["predicted_pages_in_use"] for _, e in predicted],
                   marker="o", facecolors="none", edgecolors="black", s=80, zorder=4, label="predicted pages_in_use")
    rejected = [(xs[i], records[i]) for i in order if records[i].status == Status.REJECTED]
    if rejected:
        ax.scatter([x for x, _ in rejected], [e.metrics.get("pages_required_est", 0) for _, e in rejected],
                   **{**_STYLE[Status.REJECTED], "label": "rejected: estimated need"}, zorder=4)
    return finish(plt, fig, ax, xlabel, "KV pages", title, path)


def compare(sweeps: list[tuple[str, list[PointRecord]]], knob: Optional[str], path: Path) -> Path:
    """round_avg_tok_s of several sweeps along the same knob; non-passing points marked on the x axis."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for (label, records), color in zip(sweeps, ("tab:green", "tab:purple", "tab:orange", "tab:cyan")):
        xs, xlabel = _x(records, knob)
        ok = sorted((x, e.metrics["round_avg_tok_s"]) for x, e in zip(xs, records)
                    if e.status == Status.PASS)
        if ok:
            ax.plot([x for x, _ in ok], [y for _, y in ok], "-o", color=color, label=f"{label}: round_avg_tok_s")
        bad = [x for x, e in zip(xs, records) if e.status in (Status.FAIL, Status.REJECTED)]
        if bad:
            ax.scatter(bad, [0] * len(bad), marker="X", color=color, s=80, clip_on=False, zorder=4,
                       label=f"{label}: fail / rejected")
    return finish(plt, fig, ax, knob or "point (job number)", "throughput (tokens/s)", "Sweep comparison", path)


def throughput_frontier(records: list[PointRecord], knob: Optional[str], path: Path, title: str) -> Path:
    """Total decode throughput against what each sequence gets, one mark per passing point, labelled with its
    knob value: the trade a serving engine makes between batch throughput and per-user speed."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ok = sorted((((knob_value(e, knob) if knob else e.job_num), e.metrics) for e in records
                 if e.status == Status.PASS and "per_seq_tok_s" in e.metrics),
                key=lambda pair: pair[0])  # repeated values (a search's confirmations) keep their order
    if ok:
        xs = [m["per_seq_tok_s"] for _, m in ok]
        ys = [m["decode_avg_tok_s"] for _, m in ok]
        ax.plot(xs, ys, "-o", color="tab:green", alpha=0.8, label=f"passing points, in {knob or 'job'} order")
        for (value, _), x, y in zip(ok, xs, ys):
            ax.annotate(str(value), (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlim(left=0)
    ax.margins(x=0.1, y=0.15)
    return finish(plt, fig, ax, "per-sequence decode (tokens/s per sequence)", "total decode (tokens/s)", title,
                   path)
