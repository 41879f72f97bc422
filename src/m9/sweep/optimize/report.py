"""An optimisation's part of the report: the answer, the candidates, the trial table, and three plots (best so far
against measurements, the Pareto front of total against per-sequence tok/s, which knob mattered most)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from m9.outcome.status import Status
from m9.record.journal import PointRecord
from m9.report.matrix import table
from m9.report.plots import pyplot

PLOTS = ("best_so_far.png", "pareto.png", "importance.png")


def _fmt(value) -> str:
    return "" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


class OptimizeView:
    """How an optimisation's answer shows itself (``m9.record.answer.Answer``): ``OptimizeAnswer`` is one."""

    def title(self) -> str:
        return f"optimisation of {self.objective} over {', '.join(self.knobs)}"

    def headline(self) -> str:
        return f"optimum: {self.statement()}" + (f"\n[m9] rerun the best: {self.rerun}" if self.rerun else "")

    def tables(self) -> str:
        return self.candidates_table() if self.candidates else ""

    def candidates_table(self) -> str:
        """The confirmed candidates, best first."""
        return table(["candidate", f"median {self.objective}", "spread", "measurements", "failed repeats"],
                      [[c.label, f"{c.median:.1f}", f"{c.spread:.1f}", " ".join(f"{v:.1f}" for v in c.values), c.failed]
                       for c in self.candidates])

    def trial_table(self) -> str:
        """Every trial: what it was, how it was known, what it showed."""
        rows = []
        for r in self.rows:
            v = r.verdict
            how = "planner" if v.status == Status.REJECTED else "reused" if v.reused else "ran"
            shown = v.value if v.value is not None else v.metrics.get(self.objective)
            rows.append([r.number, r.phase, r.label, how, "" if v.job is None or v.job < 0 else v.job, v.status, v.kind,
                         _fmt(shown), _fmt(v.metrics.get("per_seq_tok_s")), v.signature[:80].replace("|", "/")])
        return table(["#", "phase", "configuration", "cost", "job", "status", "kind", self.objective,
                       "per_seq_tok_s", "why"], rows)

    def section(self, records: Sequence[PointRecord] = ()) -> list[str]:
        """The report's lines for the optimisation."""
        lines = ["## Optimisation", "",
                 f"{'Maximised' if self.direction == 'maximize' else 'Minimised'} `{self.objective}` over "
                 + ", ".join(f"`{k}`" for k in self.knobs)
                 + (f" ({self.space_size} configurations)" if self.space_size else "")
                 + f" with Optuna's {self.sampler} sampler (seed {self.seed}); feasible means pass"
                 + (f" and {' and '.join(f'`{c}`' for c in self.sla)}" if self.sla else "") + ".", "",
                 f"- {self.statement()}",
                 f"- {len(self.rows)} trials: {self.count('runs')} ran, {self.count('reused')} reused from "
                 f"earlier sweeps, {self.count('rejected')} refused by the planner for free, {self.count('failed')} "
                 f"failed; {self.proposals_known} proposals answered from memory; stopped: {self.stopped}"]
        if self.rerun:
            lines.append(f"- rerun the best: `{self.rerun}`")
        if self.importance:
            lines.append("- importance: " + ", ".join(f"`{k}` {v:.2f}" for k, v in self.importance.items()))
        if self.candidates:
            lines += ["", "### Candidates", "", self.candidates_table()]
        lines += ["", "### Trials", "", self.trial_table(), ""]
        if not self.plan_only:
            lines += [f"![{p[:-4]}]({p})" for p in PLOTS] + [""]
        return lines

    def plots(self, out_dir: Path) -> list[Path]:
        """Best so far, the Pareto front and the importance, as PNGs in ``out_dir``."""
        if self.plan_only:
            return []
        plt = pyplot()
        files = []
        fig, ax = plt.subplots(figsize=(6, 4))
        curve = self.best_so_far()
        if curve:
            ax.step([n for n, _ in curve], [v for _, v in curve], where="post", color="tab:blue")
        ax.set(xlabel="measurements", ylabel=f"best {self.objective} so far", title="Best so far")
        files.append(_save(plt, fig, out_dir / PLOTS[0]))

        fig, ax = plt.subplots(figsize=(6, 4))
        pts = [r for r in self.rows if r.verdict.feasible and "per_seq_tok_s" in r.verdict.metrics]
        ax.scatter([r.verdict.metrics.get("round_avg_tok_s", 0) for r in pts],
                   [r.verdict.metrics["per_seq_tok_s"] for r in pts], color="tab:gray", label="feasible")
        front = self.pareto()
        ax.plot([r.verdict.metrics["round_avg_tok_s"] for r in front],
                [r.verdict.metrics["per_seq_tok_s"] for r in front],
                "-o", color="tab:red", label="Pareto front")
        for r in front:
            ax.annotate(r.label, (r.verdict.metrics["round_avg_tok_s"], r.verdict.metrics["per_seq_tok_s"]), fontsize=6)
        ax.set(xlabel="round_avg_tok_s (total)", ylabel="per_seq_tok_s", title="Total against per-sequence speed")
        ax.legend(fontsize=7)
        files.append(_save(plt, fig, out_dir / PLOTS[1]))

        fig, ax = plt.subplots(figsize=(6, 3))
        names = list(self.importance)
        ax.barh(names[::-1], [self.importance[n] for n in names[::-1]], color="tab:green")
        ax.set(xlabel="importance", title="Which knob mattered" if names else "importance: too few feasible points")
        files.append(_save(plt, fig, out_dir / PLOTS[2]))
        return files

