"""Does m9's trial path cost decode throughput? Same config, same machine, same run: m9 vs a bare engine script.

m9's path adds a child process (the warm worker, m9's default, or a fresh one per trial with ``--fresh``), a step
callback per decode iteration, two page-table reads per round and Levanter's INFO log in the trial log. The ratio
m9/bare of steady-state round throughput should be >= 0.98.

The two sides take turns in short batches, so that machine-load drift (+-10-20% over a minute on shared cores)
hits both alike: a bare Levanter process (bare_engine.py --serve: one engine, compiled before the first batch) runs
ROUNDS rounds; m9 runs one trial of ROUNDS + 1 rounds through ``run_trial`` (its first round, a fresh engine's, is
left out); the order flips every pair. Each pair's ratio is printed beside the median.

    python benchmarks/adapter_overhead.py [--pairs 10] [--rounds 3] [--max-seqs 16] [--new 480] [--fresh]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

from m9.compose import from_hydra, register_schema
from m9.inputs import checkpoint
from m9.plan.edge import plan_point
from m9.run.files import TrialDir
from m9.run.trial import run_trial
from m9.run.workers import Workers

WORKERS = Workers()

HERE = Path(__file__).resolve().parent


def m9_rounds(cfg) -> tuple[list[float], dict]:
    """Steady-state round throughputs of one trial through m9's own trial path, and its fixed costs."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        trial = TrialDir(Path(tmp))
        outcome = run_trial(cfg, plan_point(cfg), trial, WORKERS)
        wall = time.perf_counter() - t
        assert outcome.status == "pass", outcome.signature
        rounds = trial.read_result().rounds
    tok_s = [r.round_total_generated / r.round_total_s for r in rounds[1:]]
    costs = {k: outcome.metrics[k] for k in ("process_start_s", "import_s", "model_build_s", "engine_build_s")}
    costs["compile_s"] = outcome.metrics["first_round_s"] - statistics.median(r.round_total_s for r in rounds[1:])
    costs["trial_wall_s"] = wall
    return tok_s, costs


class BareEngine:
    """The bare side: a Levanter process that runs a batch of rounds whenever asked."""

    def __init__(self, a):
        args = [a.max_seqs, a.prompt_len, a.new, a.max_seq_len, a.page_size, a.rounds]
        self.proc = subprocess.Popen([sys.executable, str(HERE / "bare_engine.py"), "--serve", *map(str, args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def __call__(self) -> tuple[list[float], dict]:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        rounds = json.loads(self.proc.stdout.readline())
        return [r["generated"] / r["round_total_s"] for r in rounds], {}

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3, help="measured rounds per side and pair")
    p.add_argument("--max-seqs", type=int, default=16)
    p.add_argument("--prompt-len", type=int, default=16)
    p.add_argument("--new", type=int, default=480)
    p.add_argument("--max-seq-len", type=int, default=512)
    p.add_argument("--page-size", type=int, default=16)
    p.add_argument("--fresh", action="store_true", help="m9 with trial.worker=fresh (a new process per trial)")
    a = p.parse_args()

    register_schema()
    worker = "fresh" if a.fresh else "warm"
    with initialize_config_dir(config_dir=str(HERE.parent / "conf"), version_base="1.3"):
        cfg = checkpoint.resolve(from_hydra(compose("config", overrides=[
            f"engine.max_seqs={a.max_seqs}", f"engine.max_seq_len={a.max_seq_len}", f"engine.page_size={a.page_size}",
            f"workload.prompt_len={a.prompt_len}", f"workload.max_new_tokens={a.new}",
            f"workload.n_rounds={a.rounds + 1}", "tracking=none", f"trial.worker={worker}",
        ])))
    bare = BareEngine(a)
    m9_rounds(cfg)  # the warm worker's first trial compiles, as the bare side did before "ready"
    sides = {"bare": bare, f"m9 {worker}": lambda: m9_rounds(cfg)}
    tok_s = {name: [] for name in sides}
    ratios, costs = [], []
    try:
        for pair in range(a.pairs):
            medians = {}
            for name in (list(sides) if pair % 2 == 0 else list(sides)[::-1]):
                rounds, cost = sides[name]()
                tok_s[name] += rounds
                medians[name] = statistics.median(rounds)
                if cost:
                    costs.append(cost)
            ratios.append(medians[f"m9 {worker}"] / medians["bare"])
    finally:
        bare.close()
        WORKERS.close()
    print(f"config: max_seqs={a.max_seqs} prompt_len={a.prompt_len} new={a.new}; {a.pairs} pairs of {a.rounds} "
          f"rounds a side, alternated")
    for name, values in tok_s.items():
        print(f"{name:9s}: median {statistics.median(values):9.1f} tok/s over {len(values)} rounds")
    print(f"ratio m9 {worker}/bare = {statistics.median(ratios):.3f} median of pairs (target >= 0.98); per pair: "
          + ", ".join(f"{r:.3f}" for r in ratios))
    print(f"m9 {worker} fixed cost per trial (median): " + ", ".join(
        f"{k}={statistics.median(c[k] for c in costs):.2f}s" for k in costs[0]))


if __name__ == "__main__":
    main()
