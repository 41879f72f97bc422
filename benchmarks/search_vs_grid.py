"""How much does the boundary search save over a full grid? Same range, same boundary, same run.

Both sides run the real command on the tiny model, each against its own fresh store (so neither reuses the other's
points), alternating search and grid. The boundary is a runtime one the planner cannot see: an SLA on the tokens
a round produces (``max_new_tokens`` per sequence, at most ``--sla-tokens`` in the round). Each pair prints trials
and wall time of both sides and their ratios; the grid's answer is computed from its points with the same SLA.

    python benchmarks/search_vs_grid.py [--pairs 1] [--high 16] [--boundary 6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from m9.outcome.sla import misses, parse_sla
from m9.record.answer import load


def _m9(args: list[str], cwd: Path) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "m9", "-m", *args, f"tracking.uri=sqlite:///{cwd}/mlflow.db",
                           f"hydra.sweep.dir={cwd}/sweep"], cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return wall, proc.stdout


def search(a, shape: list[str], sla: str) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        wall, _ = _m9(["hydra/sweeper=boundary", "hydra.sweeper.low=1", f"hydra.sweeper.high={a.high}",
                       f"hydra.sweeper.sla=[{sla}]", *shape], Path(tmp))
        (row,) = load(json.loads((Path(tmp) / "sweep" / "m9_sweep.json").read_text())["answer"]).rows
    return wall, row.trials, row.boundary.ceiling


def grid(a, shape: list[str], sla: str) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        wall, _ = _m9([f"engine.max_seqs={','.join(map(str, range(1, a.high + 1)))}", *shape], Path(tmp))
        entries = [json.loads(p.read_text()) for p in (Path(tmp) / "sweep").glob("*/record.json")]
    trials = sum(1 for e in entries if e["outcome"]["status"] != "rejected")  # the planner's rejections cost nothing
    conditions = parse_sla([sla.replace(":le:", "<=")])
    ok = {e["params"]["engine.max_seqs"] for e in entries
          if e["outcome"]["status"] == "pass" and not misses(conditions, e["outcome"]["metrics"])}
    ceiling = max((v for v in ok if all(u in ok for u in range(1, v + 1))), default=None)
    return wall, trials, ceiling


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=1, help="search/grid pairs, alternated")
    p.add_argument("--high", type=int, default=16, help="the range is 1..high")
    p.add_argument("--boundary", type=int, default=6, help="largest max_seqs within the SLA")
    p.add_argument("--new", type=int, default=8, help="max_new_tokens per sequence")
    a = p.parse_args()
    # every value of the range is runnable (the prefill covers 8-token prompts for all of them), so the grid's
    # trials are real trials, not free rejections
    shape = ["engine.max_seq_len=64", f"engine.max_prefill_size={8 * a.high}", "workload.prompt_len=8",
             f"workload.max_new_tokens={a.new}", "workload.n_rounds=1"]
    sla = f"round_total_generated:le:{a.boundary * a.new}"
    ratios = []
    for i in range(a.pairs):
        s_wall, s_trials, s_ceiling = search(a, shape, sla)
        g_wall, g_trials, g_ceiling = grid(a, shape, sla)
        assert s_ceiling == g_ceiling == a.boundary, (s_ceiling, g_ceiling)
        ratios.append(s_wall / g_wall)
        print(f"pair {i}: search {s_trials} trials {s_wall:.1f}s | grid {g_trials} trials {g_wall:.1f}s | "
              f"ceiling {s_ceiling} both | trials ratio {s_trials / g_trials:.2f}, wall ratio {s_wall / g_wall:.2f}",
              flush=True)
    print(f"search/grid wall time: median {statistics.median(ratios):.2f} over {len(ratios)} pair(s): "
          + ", ".join(f"{r:.2f}" for r in ratios))


if __name__ == "__main__":
    main()
