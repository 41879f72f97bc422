"""Where a point's decode sits on the roofline of the chips it ran on.

Each inner decode step reads, on every chip of the mesh, that chip's part of the weights and, for each sequence it
advances, its part of that sequence's KV cache so far. From the last round's measured decode time and what its
sequences generated:

- ``decode_bytes_per_chip``: steps x one chip's weight bytes a step reads (its shards of the projections, the LM
  head, the norms) + sum over generated tokens of (context length x its part of the KV bytes per token);
  ``decode_bytes``: that over every chip of the mesh
- ``decode_flops``: 2 x matmul parameters per token + 4 x layers x heads x head size x context per token
- ``achieved_gbps`` = decode_bytes / decode time; ``bandwidth_gbps``: one chip's times the mesh's chips;
  ``roofline_frac`` = achieved_gbps / bandwidth_gbps (with one chip: that chip's)
- ``arith_intensity`` = decode_flops / decode_bytes (FLOP/byte); the ridge point is peak FLOP/s / bandwidth

Steps: the engine advances up to ``min(max_tokens_per_round, max_seqs)`` sequences per inner step, so the decode
took at least the longest sequence's decode tokens and at least ``decode tokens / that width`` steps. Pure
arithmetic, plus ``measure_host_bandwidth`` for a CPU host with no figure given.
"""

from __future__ import annotations

import functools
import time
from typing import Optional

from m9.config import M9Config
from m9.plan import Plan
from m9.plan.sizes import kv_bytes_per_token, matmul_params, step_weight_bytes_per_chip


def metrics(cfg: M9Config, plan: Plan, seq_lens: tuple[int, ...], decode_s: float,
            bandwidth_gbps: Optional[float]) -> dict[str, float]:
    """The roofline metrics of a round whose sequences generated ``seq_lens`` tokens in ``decode_s`` seconds of
    decode iterations (empty when nothing was decoded)."""
    prompt_lens = [n for n in plan.prompt_lens for _ in range(cfg.workload.n_generations)]
    decoded = [(p, g - 1) for p, g in zip(prompt_lens, seq_lens) if g > 1]  # the first token came from prefill
    tokens = sum(d for _, d in decoded)
    if not tokens or decode_s <= 0:
        return {}
    steps = max(max(d for _, d in decoded), -(-tokens // cfg.decode_width))
    # a token decoded at position p + k attends to the p + k tokens before it
    context = sum(d * p + d * (d + 1) // 2 for p, d in decoded)
    m, chips = cfg.model, cfg.chips
    per_chip = steps * step_weight_bytes_per_chip(cfg) + context * kv_bytes_per_token(cfg) // cfg.shards("kv_head")
    decode_bytes = per_chip * chips
    decode_flops = 2 * matmul_params(cfg) * tokens + 4 * m.num_layers * m.num_heads * m.head_size * context
    out = {
        "decode_bytes": float(decode_bytes),
        "decode_bytes_per_chip": float(per_chip),
        "decode_flops": float(decode_flops),
        "achieved_gbps": decode_bytes / decode_s / 1e9,
        "achieved_tflops": decode_flops / decode_s / 1e12,
        "arith_intensity": decode_flops / decode_bytes,
    }
    if bandwidth_gbps:
        out["bandwidth_gbps"] = float(bandwidth_gbps) * chips
        out["roofline_frac"] = out["achieved_gbps"] / out["bandwidth_gbps"]
    peak = cfg.accelerator.peak_tflops
    if peak:
        out["compute_frac"] = out["achieved_tflops"] / (peak * chips)
        if bandwidth_gbps:
            out["ridge_intensity"] = peak * 1e12 / (bandwidth_gbps * 1e9)
    return out


def decode_time(rounds_iter_s: list[list[float]]) -> Optional[float]:
    """Seconds the last round spent in decode iterations. When it is also the first round, its first iteration
    includes compilation: that one counts at the median of the others (None with nothing else to go by)."""
    iters = list(rounds_iter_s[-1])
    if len(rounds_iter_s) > 1:
        return sum(iters)
    if len(iters) < 2:
        return None
    rest = sorted(iters[1:])
    return sum(rest) + rest[len(rest) // 2]


def bandwidth(cfg: M9Config) -> Optional[float]:
    """One chip's memory bandwidth (GB/s): the preset's or the user's; on a CPU with none given, this host's,
    measured once per process (the process that runs the point runs on the engine's host) and shared by the
    host's devices."""
    if cfg.accelerator.bandwidth_gbps:
        return cfg.accelerator.bandwidth_gbps
    return host_bandwidth() / cfg.accelerator.chips_per_host if cfg.accelerator.platform == "cpu" else None


@functools.cache
def host_bandwidth() -> float:
    """``measure_host_bandwidth``, once per process."""
    return measure_host_bandwidth()


def measure_host_bandwidth(mib: int = 128, repeats: int = 3) -> float:
    """This host's memory bandwidth (GB/s, read + write) from copying a buffer larger than any cache, one thread
    per core (numpy releases the GIL while copying); the best of ``repeats``."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    threads = os.cpu_count() or 1
    src = np.ones(mib * 2**20 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    parts = list(zip(np.array_split(src, threads), np.array_split(dst, threads)))
    best = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(repeats):
            start = time.perf_counter()
            list(pool.map(lambda pair: np.copyto(pair[1], pair[0]), parts))
            best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best / 1e9
