"""What does a sweep cost beyond its decoding? The demo sweep three ways, alternated in one run:

- ``warm``: ``python -m m9 -m engine.max_seqs=2,4,8`` (the default warm worker: one engine child runs all points);
- ``fresh``: the same with ``trial.worker=fresh`` (a new interpreter per point: imports and model build each time);
- ``bare``: the same three points in one bare Levanter process (bare_engine.py: one import, one model build, one
  engine and its first compile per point), no planning, isolation or recording.

Each pair runs the three in turn (the order rotates) and prints wall times and the ratios warm/bare and
fresh/bare; the target is warm/bare <= 1.25. The m9 sides record to a fresh MLflow store each, as the demo does.

    python benchmarks/sweep_overhead.py [--pairs 3] [--seqs 2,4,8]
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


def _timed(cmd: list[str], cwd: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-3000:])
    return time.perf_counter() - t


def m9_side(seqs: str, worker: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        return _timed([sys.executable, "-m", "m9", "-m", f"engine.max_seqs={seqs}", f"trial.worker={worker}"], tmp)


def bare_side(seqs: str) -> float:
    # the demo's defaults: 16-token prompts, 256 new tokens, 512-token slots in 16-token pages, 3 rounds
    with tempfile.TemporaryDirectory() as tmp:
        return _timed([sys.executable, str(HERE / "bare_engine.py"), seqs, "16", "256", "512", "16", "3"], tmp)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--seqs", default="2,4,8")
    a = p.parse_args()
    sides = {"warm": lambda: m9_side(a.seqs, "warm"), "fresh": lambda: m9_side(a.seqs, "fresh"),
             "bare": lambda: bare_side(a.seqs)}
    walls: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides)
    for i in range(a.pairs):
        for name in order[i % 3:] + order[:i % 3]:  # rotate, so no side always runs first
            walls[name].append(sides[name]())
        print(f"round {i}: " + ", ".join(f"{n} {walls[n][-1]:.1f}s" for n in sides)
              + f" | warm/bare {walls['warm'][-1] / walls['bare'][-1]:.2f}"
              f" fresh/bare {walls['fresh'][-1] / walls['bare'][-1]:.2f}", flush=True)
    for name in ("warm", "fresh"):
        ratios = [w / b for w, b in zip(walls[name], walls["bare"])]
        print(f"{name}/bare: median {statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)})"
              + ("  (target <= 1.25)" if name == "warm" else ""))


if __name__ == "__main__":
    main()
