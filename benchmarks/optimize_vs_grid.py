"""How many trials and how much wall time does the optimiser need to reach the full grid's best, against the grid
itself and against random search? Several seeds, one run.

1. The full grid, measured for real on the tiny model (``python -m m9 -m ...``, its own fresh store), over a phase F
   shape of space: ``max_tokens_per_round x max_rounds x max_queued_tokens``, 128 ... here 8 sequences x 256 tokens,
   ``workload.length_fixed=true``. The planner refuses the configurations whose decode budget would truncate
   (free: nothing launches); every other one is measured once. A point's wall time is its directory's
   ``request.json`` to ``record.json``.
2. The optimiser's loop (``m9.sweep.optimize.study.Loop``, what ``hydra/sweeper=optimize`` runs) replayed over those
   measurements, seed by seed, with TPE and with random search: each proposal the planner refuses is told for free,
   each other is answered with the grid's own measurement and costs that point's wall time. So both searches and the
   grid see the very same numbers, and "the grid's best" is exact, not a noisy re-measurement.

Printed per sampler: in how many seeds the budget (a third of the measurable grid by default) reached the grid's
best configuration, and a configuration within ``--within`` of it; the trials and wall time that took, each seed's
ratio to the full grid's beside the median.

    python benchmarks/optimize_vs_grid.py [--seeds 10] [--budget N] [--within 0.05] [--grid-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from m9.outcome.status import FailureKind, Status
from m9.outcome.verdict import Verdict
from m9.sweep.optimize.space import Knob, Space
from m9.sweep.optimize.study import Loop, Settings

TPR, ROUNDS, QUEUE = (1, 2, 4, 8, 16, 32), (1, 4, 16, 48), (32, 64, 128)
KEYS = ("scheduler.max_tokens_per_round", "scheduler.max_rounds", "scheduler.max_queued_tokens")
FIXED = ["workload.length_fixed=true"]


def measure_grid(out: Path) -> dict[tuple, tuple[Verdict, float]]:
    """The real grid: each configuration's verdict (as the optimiser would be told it) and wall time."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    axes = [f"{k}={','.join(map(str, v))}" for k, v in zip(KEYS, (TPR, ROUNDS, QUEUE))]
    if not (out / "sweep" / "m9_sweep.json").exists():
        proc = subprocess.run([sys.executable, "-m", "m9", "-m", *axes, *FIXED,
                               f"tracking.uri=sqlite:///{out}/mlflow.db", f"hydra.sweep.dir={out}/sweep"],
                              cwd=out, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    table = {}
    for path in (out / "sweep").glob("*/record.json"):
        record = json.loads(path.read_text())
        values = dict(o.split("=", 1) for o in record["overrides"])
        config = tuple(int(values[k]) for k in KEYS)
        outcome = record["outcome"]
        request = path.parent / "request.json"
        wall = path.stat().st_mtime - request.stat().st_mtime if request.exists() else 0.0
        if outcome["status"] == "pass":
            verdict = Verdict(Status.PASS, value=outcome["metrics"]["round_avg_tok_s"])
        elif outcome["status"] == "rejected":
            verdict = Verdict.refused(outcome["signature"])
        else:
            verdict = Verdict(Status.FAIL, FailureKind(outcome["failure_kind"]), signature=outcome["signature"])
        table[config] = (verdict, wall)
    return table


def replay(table, space: Space, sampler: str, seed: int, budget: int, target: float, near: float):
    """One optimisation over the grid's measurements: (trials, wall) to the best and to within ``near``."""
    spent = {"trials": 0, "wall": 0.0}
    reached: dict[str, tuple[int, float]] = {}

    def check(params):
        verdict, _ = table[space.key(params)]
        return verdict if verdict.status == Status.REJECTED else None

    def measure(params, phase):
        out = []
        for p in params:
            verdict, wall = table[space.key(p)]
            spent["trials"] += 1
            spent["wall"] += wall
            if verdict.value is not None:
                for name, bar in (("best", target), ("near", near)):
                    if verdict.value >= bar and name not in reached:
                        reached[name] = (spent["trials"], spent["wall"])
            out.append(verdict)
        return out

    Loop(space, Settings(trials=budget, sampler=sampler, seed=seed, confirm=0), check, measure).run()
    return reached


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=None, help="measurements per optimisation (default: a third of "
                                                              "the grid's measurable configurations)")
    p.add_argument("--within", type=float, default=0.05, help="'near the best': within this fraction of it")
    p.add_argument("--grid-dir", type=Path, default=None, help="keep (or reuse) the grid's measurements here")
    a = p.parse_args()
    keep = a.grid_dir.resolve() if a.grid_dir else None
    with tempfile.TemporaryDirectory() as tmp:
        out = keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        table = measure_grid(out)
    space = Space(tuple(Knob(k, v) for k, v in zip(KEYS, (TPR, ROUNDS, QUEUE))), tuple(FIXED))
    measured = {c: (v, w) for c, (v, w) in table.items() if v.status != Status.REJECTED}
    best = max((v.value for v, _ in measured.values() if v.value is not None))
    grid_wall = sum(w for _, w in measured.values())
    budget = a.budget or len(measured) // 3
    print(f"grid: {len(table)} configurations, {len(table) - len(measured)} refused by the planner (free), "
          f"{len(measured)} measured in {grid_wall:.0f}s; best round_avg_tok_s {best:.1f}; "
          f"{sum(v.value >= best * (1 - a.within) for v, _ in measured.values() if v.value)} within {a.within:.0%}")
    print(f"optimiser budget: {budget} measurements; {a.seeds} seeds\n")
    print("| sampler | reached | seeds | median trials (of the grid's) | trials / grid, per seed | median wall s "
          "(of the grid's) | wall / grid, per seed |")
    print("|---|---|---|---|---|---|---|")
    for sampler in ("tpe", "random"):
        runs = [replay(table, space, sampler, seed, budget, best, best * (1 - a.within)) for seed in range(a.seeds)]
        for name, label in (("best", "the grid's best"), ("near", f"within {a.within:.0%}")):
            hit = [r[name] for r in runs if name in r]
            if not hit:
                print(f"| {sampler} | {label} | 0/{a.seeds} | - | - | - | - |")
                continue
            trials = ", ".join(f"{t / len(measured):.2f}" for t, _ in hit)
            walls = ", ".join(f"{w / grid_wall:.2f}" for _, w in hit)
            print(f"| {sampler} | {label} | {len(hit)}/{a.seeds} | {statistics.median(t for t, _ in hit):.0f} of "
                  f"{len(measured)} | {trials} | {statistics.median(w for _, w in hit):.0f} of {grid_wall:.0f} | "
                  f"{walls} |")


if __name__ == "__main__":
    main()
