"""An optimisation's part of the report: the answer, the candidates, the trial table, and three plots (best so far
against measurements, the Pareto front of total against per-sequence tok/s, which knob mattered most)."""

from __future__ import annotations

from pathlib import Path

from m9.outcome.status import Status
from m9.report.matrix import table
from m9.sweep.optimum import OptimizeAnswer

PLOTS = ("best_so_far.png", "pareto.png", "importance.png")


def _fmt(value) -> str:
    return "" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)


def candidates_table(answer: OptimizeAnswer) -> str:
    """The confirmed candidates, best first."""
    return table(["candidate", f"median {answer.objective}", "spread", "measurements", "failed repeats"],
                  [[c.label, f"{c.median:.1f}", f"{c.spread:.1f}", " ".join(f"{v:.1f}" for v in c.values), c.failed]
                   for c in answer.candidates])


def trial_table(answer: OptimizeAnswer) -> str:
    """Every trial: what it was, how it was known, what it showed."""
    rows = []
    for r in answer.rows:
        v = r.verdict
        how = "planner" if v.status == Status.REJECTED else "reused" if v.reused else "ran"
        shown = v.value if v.value is not None else v.metrics.get(answer.objective)
        rows.append([r.number, r.phase, r.label, how, "" if v.job is None or v.job < 0 else v.job, v.status, v.kind,
                     _fmt(shown), _fmt(v.metrics.get("per_seq_tok_s")), v.signature[:80].replace("|", "/")])
    return table(["#", "phase", "configuration", "cost", "job", "status", "kind", answer.objective,
                   "per_seq_tok_s", "why"], rows)


def section(answer: OptimizeAnswer) -> list[str]:
    """The report's lines for the optimisation."""
    lines = ["## Optimisation", "",
             f"{'Maximised' if answer.direction == 'maximize' else 'Minimised'} `{answer.objective}` over "
             + ", ".join(f"`{k}`" for k in answer.knobs)
             + (f" ({answer.space_size} configurations)" if answer.space_size else "")
             + f" with Optuna's {answer.sampler} sampler (seed {answer.seed}); feasible means pass"
             + (f" and {' and '.join(f'`{c}`' for c in answer.sla)}" if answer.sla else "") + ".", "",
             f"- {answer.statement()}",
             f"- {len(answer.rows)} trials: {answer.count('runs')} ran, {answer.count('reused')} reused from "
             f"earlier sweeps, {answer.count('rejected')} refused by the planner for free, {answer.count('failed')} "
             f"failed; {answer.proposals_known} proposals answered from memory; stopped: {answer.stopped}"]
    if answer.rerun:
        lines.append(f"- rerun the best: `{answer.rerun}`")
    if answer.importance:
        lines.append("- importance: " + ", ".join(f"`{k}` {v:.2f}" for k, v in answer.importance.items()))
    if answer.candidates:
        lines += ["", "### Candidates", "", candidates_table(answer)]
    lines += ["", "### Trials", "", trial_table(answer), ""]
    if not answer.plan_only:
        lines += [f"![{p[:-4]}]({p})" for p in PLOTS] + [""]
    return lines


def plots(answer: OptimizeAnswer, out_dir: Path) -> list[Path]:
    """Best so far, the Pareto front and the importance, as PNGs in ``out_dir``."""
    if answer.plan_only:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig, ax = plt.subplots(figsize=(6, 4))
    curve = answer.best_so_far()
    if curve:
        ax.step([n for n, _ in curve], [v for _, v in curve], where="post", color="tab:blue")
    ax.set(xlabel="measurements", ylabel=f"best {answer.objective} so far", title="Best so far")
    files.append(_save(plt, fig, out_dir / PLOTS[0]))

    fig, ax = plt.subplots(figsize=(6, 4))
    pts = [r for r in answer.rows if r.verdict.feasible and "per_seq_tok_s" in r.verdict.metrics]
    ax.scatter([r.verdict.metrics.get("round_avg_tok_s", 0) for r in pts],
               [r.verdict.metrics["per_seq_tok_s"] for r in pts], color="tab:gray", label="feasible")
    front = answer.pareto()
    ax.plot([r.verdict.metrics["round_avg_tok_s"] for r in front], [r.verdict.metrics["per_seq_tok_s"] for r in front],
            "-o", color="tab:red", label="Pareto front")
    for r in front:
        ax.annotate(r.label, (r.verdict.metrics["round_avg_tok_s"], r.verdict.metrics["per_seq_tok_s"]), fontsize=6)
    ax.set(xlabel="round_avg_tok_s (total)", ylabel="per_seq_tok_s", title="Total against per-sequence speed")
    ax.legend(fontsize=7)
    files.append(_save(plt, fig, out_dir / PLOTS[1]))

    fig, ax = plt.subplots(figsize=(6, 3))
    names = list(answer.importance)
    ax.barh(names[::-1], [answer.importance[n] for n in names[::-1]], color="tab:green")
    ax.set(xlabel="importance", title="Which knob mattered" if names else "importance: too few feasible points")
    files.append(_save(plt, fig, out_dir / PLOTS[2]))
    return files


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
