"""Where do the seconds of recording one point go? A single run the planner rejects (no engine starts), four ways,
rotated in one run:

- ``none``: ``python -m m9 engine.max_pages=3 tracking=none`` (compose, check, plan, journal; nothing recorded);
- ``sqlite``: the same point recorded to an existing sqlite store (what a user's second run pays);
- ``import``: ``python -c "import mlflow"`` alone (the package's own import: genai, artifacts, models, ...);
- ``open``: importing MLflow's client and opening the same store (SQLAlchemy engine, schema check, experiment).

``sqlite - open`` is what m9 adds to record one run beyond MLflow's own fixed cost; ``sqlite / none`` and
``open / (sqlite - none)`` are printed per round with their medians.

    python benchmarks/recording_cost.py [--pairs 3]
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


def _timed(cmd: list[str], cwd: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 1):  # a rejected single run exits 1
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-3000:])
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=3)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        point = [sys.executable, "-m", "m9", "engine.max_pages=3"]
        n = iter(range(10**6))
        sides = {
            "none": lambda: _timed([*point, "tracking=none", f"hydra.run.dir={tmp}/runs/{next(n)}"], tmp),
            "sqlite": lambda: _timed([*point, f"tracking.uri={uri}", f"hydra.run.dir={tmp}/runs/{next(n)}"], tmp),
            "import": lambda: _timed([sys.executable, "-c", "import mlflow"], tmp),
            "open": lambda: _timed([sys.executable, "-c", "from mlflow.tracking import MlflowClient; "
                                    f"MlflowClient(tracking_uri={uri!r}).get_experiment_by_name('m9')"], tmp),
        }
        sides["sqlite"]()  # create the store and its experiment first: every timed side then finds them
        walls: dict[str, list[float]] = {name: [] for name in sides}
        order = list(sides)
        for i in range(a.pairs):
            for name in order[i % len(order):] + order[:i % len(order)]:  # rotate, so no side always runs first
                walls[name].append(sides[name]())
            w = {name: values[-1] for name, values in walls.items()}
            print(f"round {i}: " + ", ".join(f"{k} {v:.2f}s" for k, v in w.items())
                  + f"; sqlite/none {w['sqlite'] / w['none']:.2f}, m9's own recording (sqlite - none - open) "
                    f"{w['sqlite'] - w['none'] - w['open']:+.2f}s", flush=True)
    med = {name: statistics.median(values) for name, values in walls.items()}
    print("median: " + ", ".join(f"{k} {v:.2f}s" for k, v in med.items())
          + f"; sqlite/none {statistics.median(s / n for s, n in zip(walls['sqlite'], walls['none'])):.2f}; "
            f"MLflow's import {med['import']:.2f}s and store {med['open'] - med['import']:.2f}s of the "
            f"{med['sqlite'] - med['none']:.2f}s recording adds")


if __name__ == "__main__":
    main()
