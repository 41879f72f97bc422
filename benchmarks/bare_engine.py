"""The baseline for adapter_overhead.py and sweep_overhead.py: drive Levanter's engine directly, with none of m9's
code: one import, one model build, then one engine (and its first compile) per point.

Usage: python benchmarks/bare_engine.py MAX_SEQS[,MAX_SEQS...] PROMPT_LEN NEW_TOKENS MAX_SEQ_LEN PAGE_SIZE ROUNDS
Prints one JSON line: per point, per-round wall time and generated tokens.

With ``--serve`` first (one point): build the model and the engine, run ROUNDS rounds to compile, print "ready",
then run ROUNDS more rounds for every line read on stdin, printing their JSON line each time (a side that can
alternate with another process round batch by round batch).
"""

import json
import sys
import time

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
from levanter.inference.engine import InferenceEngine, InferenceEngineConfig, Request
from levanter.inference.jit_scheduler import SeqDecodingParams
from levanter.models.llama import LlamaConfig


class _Tok:
    def decode(self, ids, skip_special_tokens=True):
        return ""


def build_model(max_seq_len):
    lcfg = LlamaConfig(max_seq_len=max_seq_len, hidden_dim=64, intermediate_dim=128, num_layers=2, num_heads=4,
                       num_kv_heads=2, gradient_checkpointing=False)
    return eqx.filter_jit(lambda k: lcfg.build(hax.Axis("vocab", 256), key=k))(jax.random.PRNGKey(0))


def make_engine(model, max_seqs, prompt_len, new, max_seq_len, page_size):
    pages = max_seqs * -(-(prompt_len + new) // page_size)
    prefill = page_size * max(-(-max_seq_len // page_size), -(-max_seqs * prompt_len // page_size))
    ecfg = InferenceEngineConfig(max_seq_len=max_seq_len, page_size=page_size, max_seqs=max_seqs, max_pages=pages,
                                 max_seqs_in_prefill=max_seqs, max_prefill_size=prefill, compute_dtype=jnp.float32,
                                 max_queued_tokens=512)
    return InferenceEngine.from_model_with_config(model, _Tok(), ecfg)


def run_rounds(engine, max_seqs, prompt_len, new, rounds):
    prompts = np.random.default_rng(0).integers(0, 256, size=(max_seqs, prompt_len)).tolist()
    out = []
    for r in range(rounds):
        base = jax.random.fold_in(jax.random.PRNGKey(0), r)
        reqs = [Request(prompt_tokens=p, request_id=i, n_generations=1, decode_params=SeqDecodingParams(
            max_num_tokens=jnp.array(prompt_len + new, dtype=jnp.int32), stop_tokens=None,
            temperature=jnp.array(0.0, dtype=jnp.float32), top_p=jnp.array(1.0, dtype=jnp.float32),
            key=jax.random.fold_in(base, i))) for i, p in enumerate(prompts)]
        t = time.perf_counter()
        result = engine.generate(reqs)
        out.append({"round_total_s": time.perf_counter() - t, "generated": result.total_generated})
    return out


def run_point(model, max_seqs, prompt_len, new, max_seq_len, page_size, rounds):
    engine = make_engine(model, max_seqs, prompt_len, new, max_seq_len, page_size)
    return run_rounds(engine, max_seqs, prompt_len, new, rounds)


def main(seqs, prompt_len, new, max_seq_len, page_size, rounds):
    model = build_model(max_seq_len)
    points = [run_point(model, int(s), prompt_len, new, max_seq_len, page_size, rounds) for s in seqs.split(",")]
    print(json.dumps(points[0] if len(points) == 1 else points))


def serve(max_seqs, prompt_len, new, max_seq_len, page_size, rounds):
    engine = make_engine(build_model(max_seq_len), max_seqs, prompt_len, new, max_seq_len, page_size)
    run_rounds(engine, max_seqs, prompt_len, new, rounds)
    print("ready", flush=True)
    for _ in sys.stdin:
        print(json.dumps(run_rounds(engine, max_seqs, prompt_len, new, rounds)), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve(*map(int, sys.argv[2:8]))
    else:
        main(sys.argv[1], *map(int, sys.argv[2:7]))
