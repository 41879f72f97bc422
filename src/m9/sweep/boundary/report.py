"""How a boundary search's answer is shown: its table (one row per search: the frontier along an outer grid), the
frontier plot, and its section of the sweep's report."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from m9.outcome.status import Status
from m9.record.journal import PointRecord
from m9.report.matrix import or_dash
from m9.report.plots import finish, pyplot


class SearchView:
    """How a boundary search's answer shows itself (``m9.record.answer.Answer``): ``SearchAnswer`` is one."""

    def title(self) -> str:
        return f"boundary search over {self.knob} in {self.low}..{self.high}"

    def headline(self) -> str:
        return (f"boundary: {self.statement()}\n[m9] search: {self.trials} trials ({self.reused} reused from earlier "
                f"sweeps), {sum(r.planner_probes for r in self.rows)} planner probes "
                f"({sum(r.rejected_free for r in self.rows)} rejected for free)"
                + (f"; {len(self.rows)} searches (the frontier above)" if len(self.rows) > 1 else ""))

    def tables(self) -> str:
        return self.search_table() if len(self.rows) > 1 else ""

    def plots(self, out_dir: Path) -> list[Path]:
        if len(self.rows) < 2:
            return []
        return [self.frontier(out_dir / "frontier.png", f"Ceiling per search: {self.title()}")]

    def search_table(self) -> str:
        """One row per search (several rows: the frontier along the outer grid): the ceiling, the first value that was
        not stable and why (a failure kind, ``sla``, or ``rejected`` by the planner)."""
        lines = [f"| searched | {self.knob} ceiling | first not stable | why | signature | trials | planner probes "
                 "(rejected for free) | notes |", "|---|---:|---:|---|---|---:|---:|---|"]
        for r in self.rows:
            b = r.boundary
            notes = [f"non-monotone: passed at {', '.join(map(str, b.non_monotone))}"] if b.non_monotone else []
            notes += [f"flaky: {', '.join(map(str, b.flaky))}"] if b.flaky else []
            notes += ["trial budget exhausted"] if b.exhausted else []
            failed = b.first_failure is not None
            why = ("/".join(sorted(b.failure_kinds)) if failed
                   else str(Status.REJECTED) if b.first_rejection is not None else "-")
            cells = [f"`{r.label}`", or_dash(b.ceiling), or_dash(b.first_failure if failed else b.first_rejection), why,
                     (b.failure_signature if failed else b.rejection_reason) or "-", str(r.trials),
                     f"{r.planner_probes} ({r.rejected_free})", "; ".join(notes)]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines)

    def section(self, records: Sequence[PointRecord] = ()) -> list[str]:
        """The report's section on the search."""
        lines = ["## Search", "", f"Searched `{self.knob}` in {self.low}..{self.high}, planner first; "
                 f"the ceiling and a non-deterministic first failure confirmed {self.confirm}x"
                 + (f"; stable means pass and {' and '.join(f'`{c}`' for c in self.sla)}" if self.sla else "") + ".",
                 ""]
        lines += [f"- {r.label + ': ' if len(self.rows) > 1 else ''}{r.boundary.statement()}" for r in self.rows]
        lines += ["", self.search_table(), ""]
        if len(self.rows) > 1:
            lines += ["![frontier](frontier.png)", ""]
        return lines

    def frontier(self, path: Path, title: str) -> Path:
        """The searched knob's ceiling and first failure for each point of the outer grid (a 2-D boundary)."""
        plt = pyplot()
        rows = self.rows
        settings = [dict(o.split("=", 1) for o in r.overrides if "=" in o) for r in rows]
        varying = [k for k in settings[0] if len({s.get(k) for s in settings}) > 1]
        try:
            xs = [float(s[varying[0]]) for s in settings] if len(varying) == 1 else None
        except ValueError:
            xs = None
        xlabel = varying[0] if xs is not None else "outer grid point"
        xs = xs if xs is not None else list(range(len(rows)))
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
        ok = [(x, r.boundary.ceiling) for x, r in zip(xs, rows) if r.boundary.ceiling is not None]
        if ok:
            ax.plot([x for x, _ in ok], [y for _, y in ok], "-o", color="tab:green",
                    label=f"ceiling (stable {self.knob})")
        bad = [(x, r.boundary.first_failure, "/".join(sorted(r.boundary.failure_kinds))) if r.boundary.first_failure
               is not None else (x, r.boundary.first_rejection, str(Status.REJECTED)) for x, r in zip(xs, rows)]
        bad = [b for b in bad if b[1] is not None]
        if bad:
            ax.scatter([x for x, _, _ in bad], [y for _, y, _ in bad], marker="x", color="tab:red", s=60, zorder=4,
                       label="first failure or rejection")
            for x, y, kind in bad:
                ax.annotate(f"{y}: {kind}", (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8,
                            color="tab:red")
        if xlabel == "outer grid point":
            ax.set_xticks(xs, [r.label for r in rows], rotation=20, ha="right", fontsize=7)
        ax.margins(x=0.1, y=0.15)  # room for the failure labels
        return finish(plt, fig, ax, xlabel, self.knob, title, path)
