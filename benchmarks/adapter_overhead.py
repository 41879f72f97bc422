"""Does m9's trial path cost decode throughput? Same config, same machine, same run: m9 vs a bare engine script.

m9's path adds a child process, a step callback per decode iteration and two page-table reads per round. The
ratio m9/bare of steady-state round throughput (median over rounds after the first, which compiles) should be
>= 0.98. Runs alternate (bare, m9, bare, m9, ...) so drift in machine load hits both sides alike.

    python benchmarks/adapter_overhead.py [--repeats 2] [--max-seqs 16] [--new 480] [--rounds 6]
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

from m9.config import from_hydra, register_schema
from m9.plan import make_plan
from m9.trial import run_trial

HERE = Path(__file__).resolve().parent


def m9_rounds(cfg) -> tuple[list[float], dict]:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        outcome = run_trial(cfg, make_plan(cfg), Path(tmp))
        wall = time.perf_counter() - t
        assert outcome.status == "pass", outcome.signature
        rounds = json.loads((Path(tmp) / "result.json").read_text())["rounds"]
    tok_s = [sum(r["seq_lens"]) / r["round_total_s"] for r in rounds[1:]]
    costs = {k: outcome.metrics[k] for k in ("process_start_s", "import_s", "model_build_s", "engine_build_s")}
    costs["compile_s"] = outcome.metrics["first_round_s"] - statistics.median(r["round_total_s"] for r in rounds[1:])
    costs["trial_wall_s"] = wall
    return tok_s, costs


def bare_rounds(a) -> list[float]:
    args = [a.max_seqs, a.prompt_len, a.new, a.max_seq_len, a.page_size, a.rounds]
    proc = subprocess.run([sys.executable, str(HERE / "bare_engine.py"), *map(str, args)], capture_output=True,
                          text=True, check=True)
    rounds = json.loads(proc.stdout.strip().splitlines()[-1])
    return [r["generated"] / r["round_total_s"] for r in rounds[1:]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--max-seqs", type=int, default=16)
    p.add_argument("--prompt-len", type=int, default=16)
    p.add_argument("--new", type=int, default=480)
    p.add_argument("--max-seq-len", type=int, default=512)
    p.add_argument("--page-size", type=int, default=16)
    p.add_argument("--rounds", type=int, default=6)
    a = p.parse_args()

    register_schema()
    with initialize_config_dir(config_dir=str(HERE.parent / "conf"), version_base="1.3"):
        cfg = from_hydra(compose("config", overrides=[
            f"engine.max_seqs={a.max_seqs}", f"engine.max_seq_len={a.max_seq_len}", f"engine.page_size={a.page_size}",
            f"workload.prompt_len={a.prompt_len}", f"workload.max_new_tokens={a.new}",
            f"workload.n_rounds={a.rounds}", "tracking=none",
        ]))
    m9_tok_s, bare_tok_s, costs, pairs = [], [], [], []
    for _ in range(a.repeats):
        bare = bare_rounds(a)
        tok_s, cost = m9_rounds(cfg)
        bare_tok_s += bare
        m9_tok_s += tok_s
        costs.append(cost)
        pairs.append(statistics.median(tok_s) / statistics.median(bare))
    bare, ours = statistics.median(bare_tok_s), statistics.median(m9_tok_s)
    print(f"config: max_seqs={a.max_seqs} prompt_len={a.prompt_len} new={a.new} rounds={a.rounds} "
          f"x{a.repeats} (first round of each run excluded)")
    print(f"bare engine : median {bare:9.1f} tok/s over {len(bare_tok_s)} rounds")
    print(f"m9 trial    : median {ours:9.1f} tok/s over {len(m9_tok_s)} rounds")
    print(f"ratio m9/bare = {ours / bare:.3f}  (target >= 0.98); per back-to-back pair: "
          + ", ".join(f"{r:.3f}" for r in pairs))
    print("m9 fixed cost per trial (median): " + ", ".join(
        f"{k}={statistics.median(c[k] for c in costs):.2f}s" for k in costs[0]))


if __name__ == "__main__":
    main()
