"""The accelerator check: a length-fixed sweep of the ``llama3_8b`` shape (random bf16 weights) over every chip of
the machine it runs on (the model axis of the mesh; ``--chips`` to choose), with the planner's predictions beside
what the engine measured, one chip's bytes of weights and KV cache, and where each point sits on the roofline.

Meant for a machine with an accelerator, as one prepared run of at most ~8 minutes (a hard ``--budget-s``); the
sweep's points are independent, so whatever finished before the budget is reported:

    python benchmarks/accelerator_check.py --accelerator h200_141gb          # on an H200 host
    python benchmarks/accelerator_check.py --accelerator cpu --model tiny    # the same script, smoke-tested on CPU

It prints one row per point: status, round_avg_tok_s, pages_in_use against the prediction, round_total_generated
against the prediction, achieved GB/s and roofline_frac, and writes the table to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from m9.record.journal import read_sweep
from m9.record.provenance import local_device_kind

COLUMNS = ["max_seqs", "mesh", "status", "round_avg_tok_s", "pages_in_use (pred)", "generated (pred)",
           "weights GiB/chip (pred)", "KV GiB/chip (pred)", "achieved GB/s", "roofline_frac", "arith_intensity",
           "peak_rss GiB"]


def _row(record) -> list[str]:
    m = record.metrics
    measured = "round_avg_tok_s" in m

    def val(key: str, fmt: str) -> str:
        return fmt.format(m[key]) if key in m else "-"

    def per_chip(key: str) -> str:
        got = f"{m[key] / 2**30:.2f}" if key in m else "-"
        return f"{got} ({m[f'predicted_{key}'] / 2**30:.2f})" if f"predicted_{key}" in m else got

    return [str(record.max_seqs), str(record.mesh),
            record.status if not record.outcome.failure_kind else f"fail ({record.outcome.failure_kind})",
            val("round_avg_tok_s", "{:.1f}"),
            f"{int(m['pages_in_use']) if measured else '-'} ({int(m.get('predicted_pages_in_use', -1))})",
            f"{int(m['round_total_generated']) if measured else '-'} ({int(m['predicted_round_total_generated'])})",
            per_chip("weight_bytes_per_chip"), per_chip("kv_cache_bytes_per_chip"),
            val("achieved_gbps", "{:.1f}"), val("roofline_frac", "{:.3f}"), val("arith_intensity", "{:.1f}"),
            f"{m['peak_rss_bytes'] / 2**30:.1f}" if "peak_rss_bytes" in m else "-"]


def _machine_chips() -> int:
    """The accelerators of this machine, counted without JAX (NVIDIA GPUs by nvidia-smi); 1 when none is seen."""
    kind = local_device_kind()
    return int(kind.rsplit(" x", 1)[1]) if kind.startswith("gpu:") else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accelerator", default="h200_141gb")
    ap.add_argument("--model", default="llama3_8b")
    ap.add_argument("--max-seqs", default="16,64,128")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--chips", type=int, help="chips on the model axis (default: every chip of this machine)")
    ap.add_argument("--budget-s", type=float, default=420.0, help="the whole sweep's wall-clock limit")
    ap.add_argument("--out", type=Path, default=Path("accelerator_check"))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    sweep_dir = (a.out / "sweep").resolve()
    dtype = "float32" if a.accelerator == "cpu" else "bfloat16"
    chips = a.chips or _machine_chips()
    argv = [sys.executable, "-m", "m9", "-m", f"model={a.model}", f"accelerator={a.accelerator}",
            f"accelerator.chips_per_host={chips}",
            "scheduler=length_fixed", "workload.length_fixed=true", f"engine.max_seqs={a.max_seqs}",
            "engine.max_seq_len=512", "engine.page_size=64", f"engine.compute_dtype={dtype}",
            f"workload.max_new_tokens={a.max_new_tokens}", "workload.prompt_len=32", "workload.n_rounds=2",
            f"trial.timeout_s={a.budget_s}", "tracking=none", f"hydra.sweep.dir={sweep_dir}"]
    print("$", " ".join(argv[1:]), flush=True)
    start = time.perf_counter()
    env = {**os.environ, "M9_PROGRESS": "0"}
    with open(a.out / "sweep.log", "w") as log:
        try:
            code = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=a.budget_s).returncode
        except subprocess.TimeoutExpired:
            code = "budget spent"
    records = read_sweep(sweep_dir) if sweep_dir.is_dir() else []
    lines = [f"accelerator={a.accelerator} model={a.model} max_new_tokens={a.max_new_tokens}: sweep exit {code} "
             f"after {time.perf_counter() - start:.0f}s, {len(records)} points recorded", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in records]
    runtime = next((r.outcome.runtime for r in records if r.outcome.runtime), {})
    lines += ["", f"runtime: {json.dumps(runtime)}"]
    text = "\n".join(lines)
    (a.out / "accelerator_check.md").write_text(text + "\n")
    print(text)
    return 0 if records else 1


if __name__ == "__main__":
    sys.exit(main())
