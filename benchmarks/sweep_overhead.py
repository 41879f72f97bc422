"""What does a sweep cost beyond its decoding? The demo sweep, alternated in one run with the same points in one bare
Levanter process:

- ``m9``: ``python -m m9 -m engine.max_seqs=2,4,8``, recording to a fresh MLflow sqlite store (as the demo does on a
  fresh checkout: the store is created by the sweep);
- ``none``: the same with ``tracking=none`` (planning, isolation, journals, report and plots; no store);
- ``fresh`` (with ``--fresh``): the same with ``trial.worker=fresh`` (a new interpreter per point);
- ``bare``: the same three points in one bare Levanter process (bare_engine.py: one import, one model build, one
  engine and its first compile per point), no planning, isolation or recording.

Each round runs every side once, the order rotating so that no side always runs first, and prints each side's wall
time and its ratio to the round's bare run; the end prints every round's ratio beside the median. The targets:
m9/bare <= 1.15, none/bare <= 1.05.

    python benchmarks/sweep_overhead.py [--pairs 3] [--seqs 2,4,8] [--fresh]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = {"m9": 1.15, "none": 1.05}


def _timed(cmd: list[str], cwd: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["USE_TORCH"] = "0"  # the bare process imports transformers without PyTorch too, as m9's engine children do
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-3000:])
    return time.perf_counter() - t


def m9_side(seqs: str, *overrides: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:  # a fresh folder: a fresh store at outputs/mlflow.db
        return _timed([sys.executable, "-m", "m9", "-m", f"engine.max_seqs={seqs}", *overrides], tmp)


def bare_side(seqs: str) -> float:
    # the demo's defaults: 16-token prompts, 256 new tokens, 512-token slots in 16-token pages, 3 rounds
    with tempfile.TemporaryDirectory() as tmp:
        return _timed([sys.executable, str(HERE / "bare_engine.py"), seqs, "16", "256", "512", "16", "3"], tmp)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=3, help="rounds (each runs every side once)")
    p.add_argument("--seqs", default="2,4,8")
    p.add_argument("--fresh", action="store_true", help="also time trial.worker=fresh")
    a = p.parse_args()
    sides = {"m9": lambda: m9_side(a.seqs), "none": lambda: m9_side(a.seqs, "tracking=none"),
             **({"fresh": lambda: m9_side(a.seqs, "trial.worker=fresh")} if a.fresh else {}),
             "bare": lambda: bare_side(a.seqs)}
    walls: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides)
    for i in range(a.pairs):
        for name in order[i % len(order):] + order[:i % len(order)]:  # rotate, so no side always runs first
            walls[name].append(sides[name]())
        print(f"round {i}: " + ", ".join(f"{n} {walls[n][-1]:.1f}s" for n in sides) + " | "
              + " ".join(f"{n}/bare {walls[n][-1] / walls['bare'][-1]:.3f}" for n in sides if n != "bare"),
              flush=True)
    for name in (n for n in sides if n != "bare"):
        ratios = [w / b for w, b in zip(walls[name], walls["bare"])]
        target = f"  (target <= {TARGETS[name]})" if name in TARGETS else ""
        print(f"{name}/bare: median {statistics.median(ratios):.3f} ({', '.join(f'{r:.3f}' for r in ratios)}); "
              f"median wall {statistics.median(walls[name]):.1f}s vs bare {statistics.median(walls['bare']):.1f}s"
              + target)


if __name__ == "__main__":
    main()
