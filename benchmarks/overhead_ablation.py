"""Where would m9's trial path lose decode throughput? Each suspect switched on alone, in one process, on one engine.

adapter_overhead.py compares m9's whole trial path with a bare engine script across processes; this one finds the
cause. One model and one engine (shapes compiled once), then rounds of ``generate`` with each variant in turn,
alternated (A B C ... A B C ...), so drift hits every variant alike:

- ``raw``: ``engine.generate`` alone, timed around the call: what bare_engine.py measures;
- ``bare``: m9's measured round (``run_round``: iteration marks, one page-table read after prefill), a silent
  tokenizer, logging at WARNING, no progress hook;
- ``info_log``: Levanter's INFO logging to a file (one "Decode iter" line per decode iteration);
- ``tokenizer``: m9's token-id tokenizer, whose ``decode`` Levanter calls for every finished sequence;
- ``callback``: m9's per-iteration step callback (token and page counts, a progress line written and flushed);
- ``m9``: all three, as the trial child runs.

    python benchmarks/overhead_ablation.py [--reps 5] [--max-seqs 16] [--new 480]

Prints each variant's median round throughput and its ratio to ``raw``, with every rep's ratio.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time

from hydra import compose, initialize_config_dir

from m9.compose import from_hydra, register_schema
from m9.inputs import checkpoint
from m9.plan.edge import plan_point

HERE = os.path.dirname(os.path.abspath(__file__))


class _Silent:
    def decode(self, ids, skip_special_tokens=True):
        return ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--max-seqs", type=int, default=16)
    p.add_argument("--new", type=int, default=480)
    a = p.parse_args()

    register_schema()
    with initialize_config_dir(config_dir=os.path.join(HERE, "..", "conf"), version_base="1.3"):
        cfg = checkpoint.resolve(from_hydra(compose("config", overrides=[f"engine.max_seqs={a.max_seqs}",
                                                      f"workload.max_new_tokens={a.new}", "tracking=none"])))
    from m9.engine.model import TokenIdsTokenizer, build_model
    from m9.engine.rounds import build_engine, make_requests, run_round
    from m9.inputs import prompts

    plan = plan_point(cfg)
    model = build_model(cfg.model, cfg.engine.max_seq_len, cfg.engine.compute_dtype)
    engine = build_engine(model, cfg, plan.max_pages, plan.max_prefill_size)
    requests = make_requests(cfg, [list(p) for p in prompts.Prompts().build(cfg).token_ids], 0)
    log_file = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    handler = logging.StreamHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    progress = open(os.devnull, "w")

    def hook(i: int, tokens: int, pages: int) -> None:  # what the trial child's hook does per iteration
        progress.write(json.dumps({"round": 0, "iter": i, "tokens": tokens, "pages": pages,
                                   "elapsed": time.perf_counter(), "iter_s": 0.0}) + "\n")
        progress.flush()

    variants = {
        "raw": dict(info=False, tok=_Silent(), cb=False, raw=True),
        "bare": dict(info=False, tok=_Silent(), cb=False),
        "info_log": dict(info=True, tok=_Silent(), cb=False),
        "tokenizer": dict(info=False, tok=TokenIdsTokenizer(), cb=False),
        "callback": dict(info=False, tok=_Silent(), cb=True),
        "m9": dict(info=True, tok=TokenIdsTokenizer(), cb=True),
    }
    tok_s: dict[str, list[float]] = {name: [] for name in variants}
    run_round(engine, requests)  # compile
    for _ in range(a.reps):
        for name, v in variants.items():
            logging.getLogger().setLevel(logging.INFO if v["info"] else logging.WARNING)
            engine.tokenizer = v["tok"]
            if v.get("raw"):
                t = time.perf_counter()
                result = engine.generate(requests)
                tok_s[name].append(result.total_generated / (time.perf_counter() - t))
                continue
            stats = run_round(engine, requests, on_iter=hook if v["cb"] else None)
            tok_s[name].append(stats.round_total_generated / stats.round_total_s)
    base = statistics.median(tok_s["raw"])
    print(f"max_seqs={a.max_seqs} new={a.new} reps={a.reps}: median tok/s and ratio to raw (per rep)")
    for name, values in tok_s.items():
        per_rep = ", ".join(f"{x / b:.3f}" for x, b in zip(values, tok_s["raw"]))
        print(f"  {name:10s} {statistics.median(values):9.1f}  {statistics.median(values) / base:.3f}  ({per_rep})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
