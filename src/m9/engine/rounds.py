"""Drive Levanter's InferenceEngine through measured ``generate`` rounds.

DecodeStats (pages in use, free pages) are read from the engine's own page table: ``generate`` frees pages only at
the next reset, so after the call ``page_ref_counts > 0`` counts exactly the pages the round held.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Callable, Optional

import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from levanter.inference.engine import InferenceEngine, InferenceEngineConfig, Request
from levanter.inference.jit_scheduler import SeqDecodingParams
from levanter.inference.utils import INVALID

from m9.config import M9Config
from m9.engine.model import TokenIdsTokenizer
from m9.protocol import RoundStats


def engine_config(cfg: M9Config, max_pages: int, max_prefill_size: int) -> InferenceEngineConfig:
    """Levanter's config from m9's engine + scheduler sections (same names, same meanings), with the sizes the plan
    resolved for ``max_pages`` and ``max_prefill_size``."""
    e, s = cfg.engine, cfg.scheduler
    return InferenceEngineConfig(
        max_seq_len=e.max_seq_len,
        hbm_utilization=e.hbm_utilization,
        page_size=e.page_size,
        max_rounds=s.max_rounds,
        max_stop_seqs=e.max_stop_seqs,
        max_stop_tokens=e.max_stop_tokens,
        seed=e.seed,
        max_seqs=e.max_seqs,
        max_pages=max_pages,
        compute_dtype=jnp.dtype(e.compute_dtype),
        max_queued_tokens=s.max_queued_tokens,
        max_seqs_in_prefill=e.imputed_max_seqs_in_prefill,
        max_prefill_size=max_prefill_size,
        max_tokens_per_round=s.max_tokens_per_round,
    )


def build_engine(model, cfg: M9Config, max_pages: int, max_prefill_size: int, mesh: Optional[Mesh] = None
                 ) -> InferenceEngine:
    """A fresh engine (KV cache + decode state) around an already built model. On ``mesh`` the KV cache is
    allocated with the point's axis mapping (``kv_head`` split over the model axis when the mesh maps it), and the
    decode state is laid on the mesh as its first round leaves it (``_settled``)."""
    engine = InferenceEngine.from_model_with_config(model, TokenIdsTokenizer(),
                                                    engine_config(cfg, max_pages, max_prefill_size),
                                                    axis_resources=cfg.mesh.mapping if mesh is not None else None)
    if mesh is not None:
        engine.gen_state = _settled(engine.gen_state, mesh)
    return engine


def _settled(state, mesh: Mesh):
    """The engine's state with its Python-number leaves (the decode state's ``pad_token_id``) as arrays replicated
    on the mesh, the form the first ``generate`` leaves them in. Built, the state holds a Python int there; on a mesh
    the first round's jitted calls return it as an array typed with the mesh, so the second round's prefill and
    decode would see another input type and compile again (measured on CPU: 4-5 s a point for the tiny model,
    every point; on an accelerator, the prefill and decode of the model all over again). Settled, the first round's
    executables serve every later round."""
    replicated = NamedSharding(mesh, PartitionSpec())

    def settle(leaf):
        if isinstance(leaf, (int, float)) and not isinstance(leaf, bool):
            value = np.asarray(leaf, dtype=jnp.asarray(leaf).dtype)  # the dtype JAX gives it (int32 without x64)
            # a global mesh spans other processes' devices: every process makes its own shards of the same value
            return jax.make_array_from_callback((), replicated, lambda index: value)
        return leaf

    return jax.tree_util.tree_map(settle, state)


def stop_array(stop_ids: list[list[int]]) -> hax.NamedArray | None:
    """Stop sequences as the engine takes them: one row each, left-padded with ``INVALID``."""
    if not stop_ids:
        return None
    width = max(len(ids) for ids in stop_ids)
    rows = np.full((len(stop_ids), width), INVALID, dtype=np.int32)
    for row, ids in zip(rows, stop_ids):
        row[width - len(ids):] = ids
    return hax.named(jnp.asarray(rows), ("stop_seq", "position"))


def make_requests(cfg: M9Config, prompts: list[list[int]], round_idx: int,
                  stop_ids: list[list[int]] | None = None) -> list[Request]:
    """One ``Request`` per prompt asking for ``max_new_tokens``, ended early only by a stop sequence."""
    w = cfg.workload
    base_key = jax.random.fold_in(jax.random.PRNGKey(w.seed), round_idx)
    stops = stop_array(stop_ids or [])
    return [
        Request(
            prompt_tokens=list(prompt),
            request_id=i,
            decode_params=SeqDecodingParams(
                max_num_tokens=jnp.array(len(prompt) + w.max_new_tokens, dtype=jnp.int32),
                stop_tokens=stops,
                temperature=jnp.array(w.temperature, dtype=jnp.float32),
                top_p=jnp.array(1.0, dtype=jnp.float32),
                key=jax.random.fold_in(base_key, i),
            ),
            n_generations=w.n_generations,
        )
        for i, prompt in enumerate(prompts)
    ]


def pages_in_use(engine: InferenceEngine) -> int:
    """Pages currently referenced in the engine's page table."""
    counts = engine.gen_state.decode_state.page_table.page_ref_counts.array  # i32[max_pages]
    return int(jax.device_get(jnp.sum(counts > 0)))


def run_round(
    engine: InferenceEngine, requests: list[Request], on_iter: Callable[[int, int, int], None] | None = None
) -> RoundStats:
    """One measured ``generate`` call. ``on_iter(i, tokens, pages)`` is told when decode iteration ``i`` starts,
    with the tokens generated so far and the pages they hold (``ceil((prompt + generated - 1) / page_size)`` per
    sequence, the count the page table shows after the round; computed on the host, so the callback adds no
    device read to the decode loop)."""
    prompt_len = {int(r.request_id): len(r.prompt_tokens) for r in requests}
    page = engine.config.page_size
    marks: list[float] = []
    after_prefill: list[int] = []

    def step_callback(i: int) -> None:
        marks.append(time.perf_counter())
        if i == 0:  # the prefill has been ingested: its pages are in the table now
            after_prefill.append(pages_in_use(engine))
            marks[-1] = time.perf_counter()  # keep the page read out of the first iteration's time
        if on_iter is not None:
            lens = [(rid, len(r.token_list)) for rid, kids in engine.results.items() for r in kids.values()]
            on_iter(i, sum(n for _, n in lens), sum(-(-(prompt_len[rid] + n - 1) // page) for rid, n in lens if n))

    start = time.perf_counter()
    result = engine.generate(requests, step_callback=step_callback)
    end = time.perf_counter()

    after_decode = pages_in_use(engine)
    iter_s = tuple(b - a for a, b in zip(marks, marks[1:] + [end]))
    seq_lens = tuple(sum(1 for t in seq if t != INVALID) for seq in result.tokens)
    nonfinite = sum(1 for lps in (result.logprobs or []) for lp in lps if not math.isfinite(lp))
    return RoundStats(
        round_total_s=end - start,
        prefill_s=(marks[0] if marks else end) - start,
        iter_s=iter_s,
        seq_lens=seq_lens,
        pages_in_use_after_prefill=after_prefill[0] if after_prefill else after_decode,
        pages_in_use_after_decode=after_decode,
        max_pages=engine.gen_state.decode_state.page_table.page_ref_counts.array.shape[0],
        nonfinite_logprobs=nonfinite,
        tokens_digest=hashlib.sha256(json.dumps([[int(t) for t in seq] for seq in result.tokens]).encode()
                                     ).hexdigest()[:16],
    )
