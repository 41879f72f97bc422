"""Capacity and budget arithmetic for one point: what it will need, what it will produce, and whether it can run.

Arithmetic on the typed config and the point's tokenized prompts; imports no JAX, so a rejected point costs
microseconds (milliseconds when a tokenizer is read for the first time). The formulas are the
ones the experiment log validated against Levanter's engine:

- pages per sequence (the log's estimate, used to size and validate ``max_pages``):
  ``ceil((prompt_len + max_new_tokens) / page_size)``, with each prompt's real token length (``m9.prompts``)
- pages the engine actually holds for a sequence that got ``g`` tokens: ``ceil((prompt_len + g - 1) / page_size)``
  (the last sampled token is never written to the cache)
- decode budget per ``generate`` call: ``floor(max_seq_len / max_rounds) * max_rounds * min(tpr, max_seqs)``; the
  prefill samples one more token per admitted sequence, and a budget short of the ask truncates sequences evenly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from m9.inputs import checkpoint
from m9.inputs import prompts
from m9.config import M9Config

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "float8_e4m3fn": 1, "float8_e5m2": 1}


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Plan:
    """Resolved knobs, predictions and verdict for one point. Sizes in pages/tokens/bytes as named."""

    num_prompts: int
    """Prompts per round (``workload.num_prompts`` or ``engine.max_seqs``)."""
    num_seqs: int
    """Sequences per round: prompts x n_generations."""
    max_pages: int
    """KV pages the engine is built with (the configured value, or the estimate when unset)."""
    max_pages_auto: bool
    """True when ``max_pages`` was sized by m9."""
    max_tokens_per_round: int
    """Effective tpr (``scheduler.max_tokens_per_round`` or ``engine.max_seqs``)."""
    max_prefill_size: int
    """Prefill buffer size in tokens the engine is built with (the configured value, or sized by m9 when unset)."""
    max_seqs_in_prefill: int
    """Sequences admitted per prefill batch (``engine.max_seqs_in_prefill``, or ``engine.max_seqs``)."""
    prompt_source: str
    """``synthetic`` or the workload key the prompt texts came from."""
    prompt_lens: tuple[int, ...]
    """Tokens of each prompt of a round, as tokenized (synthetic: ``workload.prompt_len`` each)."""
    max_prefill_size_auto: bool
    """True when ``max_prefill_size`` was sized by m9: Levanter's default (one full sequence), or every prompt of
    the round when that is more."""
    pages_per_seq_est: int
    """The log's per-sequence page estimate (of the longest prompt)."""
    pages_required_est: int
    """The log's estimate for the whole round: what ``max_pages`` is validated against."""
    decode_budget: int
    """Tokens the decode loop can emit per ``generate`` call."""
    tokens_requested: int
    """num_seqs x max_new_tokens."""
    predicted_generated: int
    """Predicted ``round_total_generated``."""
    predicted_pages_in_use: int
    """Predicted pages held after decode (what the page table will show)."""
    kv_cache_bytes: int
    """KV cache size at ``max_pages``."""
    weight_bytes: int
    """Model parameters in the compute dtype."""
    rejections: tuple[str, ...]
    """Reasons this point cannot run as configured; empty when it may run."""
    warnings: tuple[str, ...]
    """Things that will not stop the run but change what it measures."""

    @property
    def accepted(self) -> bool:
        """True when the point may run."""
        return not self.rejections

    def resolved_params(self) -> dict[str, object]:
        """The values m9 derived for knobs left unset, recorded beside the config as ``resolved.*``."""
        return {
            "resolved.num_prompts": self.num_prompts,
            "resolved.num_seqs": self.num_seqs,
            "resolved.max_pages": self.max_pages,
            "resolved.max_pages_auto": self.max_pages_auto,
            "resolved.max_tokens_per_round": self.max_tokens_per_round,
            "resolved.max_prefill_size": self.max_prefill_size,
            "resolved.max_prefill_size_auto": self.max_prefill_size_auto,
            "resolved.max_seqs_in_prefill": self.max_seqs_in_prefill,
            "resolved.prompt_source": self.prompt_source,
            "resolved.prompt_tokens": prompts.describe(self.prompt_lens),
            "resolved.prompt_tokens_total": sum(self.prompt_lens),
        }

    @property
    def truncation_predicted(self) -> bool:
        """True when the decode budget is short of the ask and sequences will be cut evenly."""
        return self.predicted_generated < self.tokens_requested


def _generated_per_seq(num_seqs: int, max_new_tokens: int, decode_budget: int) -> list[int]:
    """Tokens each sequence gets: one from prefill, then an even share of the decode budget, capped at the ask."""
    total = min(num_seqs * max_new_tokens, num_seqs + decode_budget)
    base, extra = divmod(total, num_seqs)
    return [base + 1] * extra + [base] * (num_seqs - extra)


def matmul_params(cfg: M9Config) -> int:
    """Parameters multiplied with every token: attention and MLP projections and the LM head (not the embedding
    lookup or the norms)."""
    m = cfg.model
    hd = m.head_size
    attn = m.hidden_dim * m.num_heads * hd * 2 + m.hidden_dim * m.num_kv_heads * hd * 2
    mlp = 3 * m.hidden_dim * m.intermediate_dim
    return m.num_layers * (attn + mlp) + m.vocab_size * m.hidden_dim


def kv_bytes_per_token(cfg: M9Config) -> int:
    """KV cache bytes one token occupies (keys and values, every layer)."""
    m = cfg.model
    return 2 * m.num_layers * m.num_kv_heads * m.head_size * DTYPE_BYTES[cfg.engine.compute_dtype]


def _norm_params(cfg: M9Config) -> int:
    return (2 * cfg.model.num_layers + 1) * cfg.model.hidden_dim


def _param_count(cfg: M9Config) -> int:
    m = cfg.model
    embedding = 0 if m.tie_word_embeddings else m.vocab_size * m.hidden_dim  # tied: it is the LM head's matrix
    return matmul_params(cfg) + embedding + _norm_params(cfg)


def step_weight_bytes(cfg: M9Config) -> int:
    """Weight bytes one decode step reads: every multiplied matrix and the norms (the embedding lookup reads only
    the rows of the tokens it embeds)."""
    return (matmul_params(cfg) + _norm_params(cfg)) * DTYPE_BYTES[cfg.engine.compute_dtype]


FAULTS = ("sigkill", "hang", "nan_weights", "segfault")
FAULT_ENV = "M9_ALLOW_FAULT_INJECTION"


def validate(cfg: M9Config) -> list[str]:
    """Bad input: values no point could run with (non-positive sizes, unknown names, a queue smaller than what
    Levanter requires of it). The command refuses these before anything runs; each message names the key."""
    e, s, w, m, t = cfg.engine, cfg.scheduler, cfg.workload, cfg.model, cfg.trial
    problems: list[str] = []
    positive = {
        "engine.max_seq_len": e.max_seq_len,
        "engine.page_size": e.page_size,
        "engine.max_pages": e.max_pages,
        "engine.max_seqs": e.max_seqs,
        "engine.max_seqs_in_prefill": e.max_seqs_in_prefill,
        "engine.max_prefill_size": e.max_prefill_size,
        "scheduler.max_tokens_per_round": s.max_tokens_per_round,
        "scheduler.max_rounds": s.max_rounds,
        "scheduler.max_queued_tokens": s.max_queued_tokens,
        "workload.num_prompts": w.num_prompts,
        "workload.prompt_len": w.prompt_len,
        "workload.max_new_tokens": w.max_new_tokens,
        "workload.n_generations": w.n_generations,
        "workload.n_rounds": w.n_rounds,
        "model.vocab_size": m.vocab_size,
        "model.hidden_dim": m.hidden_dim,
        "model.intermediate_dim": m.intermediate_dim,
        "model.num_layers": m.num_layers,
        "model.num_heads": m.num_heads,
        "model.num_kv_heads": m.num_kv_heads,
        "model.head_dim": m.head_dim,
        "trial.timeout_s": t.timeout_s,
        "accelerator.chips_per_host": cfg.accelerator.chips_per_host,
        "accelerator.memory_gib": cfg.accelerator.memory_gib,
        "accelerator.bandwidth_gbps": cfg.accelerator.bandwidth_gbps,
        "accelerator.peak_tflops": cfg.accelerator.peak_tflops,
        "trial.memory_limit_gb": t.memory_limit_gb,
        "trial.repeats": t.repeats,
    }
    problems += [f"{k}={v} must be > 0" for k, v in positive.items() if v is not None and v <= 0]
    if e.max_stop_seqs < 0 or e.max_stop_tokens < 0:
        problems.append("engine.max_stop_seqs and engine.max_stop_tokens must be >= 0")
    if w.temperature < 0:
        problems.append(f"workload.temperature={w.temperature} must be >= 0")
    if e.compute_dtype not in DTYPE_BYTES:
        problems.append(f"engine.compute_dtype={e.compute_dtype!r} must be one of {', '.join(DTYPE_BYTES)}")
    if not 0 < e.hbm_utilization <= 1:
        problems.append(f"engine.hbm_utilization={e.hbm_utilization} must be in (0, 1]")
    if m.checkpoint is None and m.rope_type not in ("default", "llama3"):  # a checkpoint's is Levanter's to read
        problems.append(f"model.rope_type={m.rope_type!r} must be 'default' or 'llama3'")
    if m.num_kv_heads > 0 and m.num_heads % m.num_kv_heads:
        problems.append(f"model.num_heads={m.num_heads} must be a multiple of model.num_kv_heads={m.num_kv_heads}")
    if t.worker not in ("warm", "fresh"):
        problems.append(f"trial.worker={t.worker!r} must be 'warm' or 'fresh'")
    if cfg.tracking.backend not in ("mlflow", "none"):
        problems.append(f"tracking.backend={cfg.tracking.backend!r} must be 'mlflow' or 'none'")
    if t.inject_fault is not None:
        if t.inject_fault not in FAULTS:
            problems.append(f"trial.inject_fault={t.inject_fault!r} must be one of {', '.join(FAULTS)}")
        elif os.environ.get(FAULT_ENV) != "1":
            problems.append(f"trial.inject_fault={t.inject_fault} is for m9's own tests and needs {FAULT_ENV}=1")
    if problems:
        return problems
    try:
        prompts.build(cfg, cfg.imputed_num_prompts)
    except ValueError as exc:
        problems.append(str(exc))
    tpr = s.max_tokens_per_round if s.max_tokens_per_round is not None else e.max_seqs
    needed_queue = max(e.max_seqs, tpr, e.imputed_max_seqs_in_prefill)
    if s.max_queued_tokens < needed_queue:
        problems.append(
            f"scheduler.max_queued_tokens={s.max_queued_tokens} must be >= max(engine.max_seqs={e.max_seqs}, "
            f"max_tokens_per_round={tpr}, engine.max_seqs_in_prefill={e.imputed_max_seqs_in_prefill}) = {needed_queue}"
        )
    return problems


def host_memory_bytes() -> Optional[int]:
    """Total RAM of this host (Linux), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def make_plan(cfg: M9Config) -> Plan:
    """Plan one point: resolve defaults, predict pages and tokens, and list every reason it cannot run."""
    e, s, w = cfg.engine, cfg.scheduler, cfg.workload
    problems = validate(cfg)
    warnings: list[str] = []
    if problems:  # the arithmetic below needs sane sizes
        return _rejected(cfg, problems)

    num_prompts = cfg.imputed_num_prompts
    num_seqs = num_prompts * w.n_generations
    prompt_set = prompts.build(cfg, num_prompts)
    lens = prompt_set.lengths
    seq_lens = [n for n in lens for _ in range(w.n_generations)]  # clones follow their prompt
    prompt_tokens, longest = sum(lens), max(lens)
    tpr = s.max_tokens_per_round if s.max_tokens_per_round is not None else e.max_seqs
    # Unset, the prefill buffer holds every prompt of the round (as max_pages holds every sequence): Levanter's own
    # default is one full sequence, which silently leaves prompts unserved once they outgrow it.
    prefill_size = e.max_prefill_size if e.max_prefill_size is not None else e.page_size * max(
        _ceil_div(e.max_seq_len, e.page_size), _ceil_div(prompt_tokens, e.page_size)
    )
    pages_per_seq = [_ceil_div(n + w.max_new_tokens, e.page_size) for n in seq_lens]
    pages_per_seq_est, pages_required = max(pages_per_seq), sum(pages_per_seq)
    max_pages = e.max_pages if e.max_pages is not None else pages_required
    decode_budget = (e.max_seq_len // s.max_rounds) * s.max_rounds * min(tpr, e.max_seqs)
    per_seq = _generated_per_seq(num_seqs, w.max_new_tokens, decode_budget)
    predicted_pages = sum(_ceil_div(n + g - 1, e.page_size) for n, g in zip(seq_lens, per_seq))
    tokens_requested = num_seqs * w.max_new_tokens
    if prompt_set.source == "synthetic":
        prompt_text = f"{w.prompt_len}"
    else:
        prompt_text = f"{prompts.describe(lens)} (workload.{prompt_set.source} as tokenized)"

    if max_pages < pages_required:
        per = (f"ceil(({prompt_text}+{w.max_new_tokens})/{e.page_size})={pages_per_seq_est} pages"
               if min(pages_per_seq) == pages_per_seq_est else
               f"ceil((prompt+{w.max_new_tokens})/{e.page_size}) pages, prompts of {prompt_text} tokens")
        problems.append(
            f"engine.max_pages={max_pages} is too small for {num_seqs} sequences x {per} "
            f"(est. {pages_required} pages needed)"
        )
    if e.max_seqs < num_seqs:
        problems.append(f"engine.max_seqs={e.max_seqs} < {num_seqs} sequences per round (prompts x n_generations)")
    if e.imputed_max_seqs_in_prefill < num_prompts:
        problems.append(
            f"engine.max_seqs_in_prefill={e.imputed_max_seqs_in_prefill} must cover all prompts per round ({num_prompts}); "
            "the engine would silently leave the rest unserved"
        )
    if prefill_size < prompt_tokens:
        problems.append(
            f"engine.max_prefill_size={prefill_size} < {num_prompts} prompts of {prompt_text} tokens "
            f"= {prompt_tokens}; the engine would silently leave prompts unserved"
        )
    if e.max_seq_len < longest + w.max_new_tokens:
        problems.append(
            f"engine.max_seq_len={e.max_seq_len} < longest prompt + max_new_tokens = {longest} + {w.max_new_tokens}"
            + ("" if prompt_set.source == "synthetic" else f" (workload.{prompt_set.source} as tokenized)")
        )
    if s.max_rounds > e.max_seq_len:
        problems.append(
            f"scheduler.max_rounds={s.max_rounds} > engine.max_seq_len={e.max_seq_len}: the decode loop would never run"
        )
    if not problems and sum(per_seq) < tokens_requested:
        short = (
            f"decode budget floor({e.max_seq_len}/{s.max_rounds})*{s.max_rounds}*min({tpr},{e.max_seqs})="
            f"{decode_budget} + {num_seqs} prefill tokens < {num_seqs} x {w.max_new_tokens} = {tokens_requested}: "
            f"generation will plateau at {sum(per_seq)} tokens"
        )
        (problems if w.length_fixed else warnings).append(short)
    if w.n_rounds < 3:  # measured on CPU: round 1 recompiles the prefill for a used engine state (~0.2 s tiny)
        warnings.append(f"workload.n_rounds={w.n_rounds}: the last round still includes compilation (round 0 compiles, "
                        "round 1 recompiles the prefill), except where a warm worker compiled this shape before; "
                        "throughput compares across points from n_rounds=3")
    if w.n_generations > 1:
        warnings.append("page predictions assume no prompt-page sharing between clones (n_generations > 1)")
    if prompt_set.stop_ids:
        warnings.append(f"{len(prompt_set.stop_ids)} stop sequences: a sequence may stop early, so the predicted "
                        "tokens and pages are upper bounds")
    hf_max = _max_position_embeddings(cfg)
    if hf_max is not None and e.max_seq_len > hf_max:
        warnings.append(f"engine.max_seq_len={e.max_seq_len} > the checkpoint's max_position_embeddings={hf_max}")

    dtype_bytes = DTYPE_BYTES[e.compute_dtype]
    kv_per_token = kv_bytes_per_token(cfg)
    kv_bytes = kv_per_token * e.page_size * max_pages
    weight_bytes = _param_count(cfg) * dtype_bytes
    memory = _device_memory(cfg)
    if memory is not None and kv_bytes + weight_bytes > e.hbm_utilization * memory:
        problems.append(
            f"engine.max_pages={max_pages}: KV cache {kv_bytes / 2**30:.2f} GiB ({max_pages} pages x {e.page_size} "
            f"tokens x {kv_per_token / 2**10:g} KiB/token) + weights {weight_bytes / 2**30:.2f} GiB > "
            f"engine.hbm_utilization={e.hbm_utilization} x {memory / 2**30:.1f} GiB of one "
            f"{cfg.accelerator.name} chip (m9 decodes on one chip per process)"
        )
    return Plan(
        num_prompts=num_prompts,
        num_seqs=num_seqs,
        max_pages=max_pages,
        max_pages_auto=e.max_pages is None,
        max_tokens_per_round=tpr,
        max_prefill_size=prefill_size,
        max_seqs_in_prefill=e.imputed_max_seqs_in_prefill,
        prompt_source=prompt_set.source,
        prompt_lens=lens,
        max_prefill_size_auto=e.max_prefill_size is None,
        pages_per_seq_est=pages_per_seq_est,
        pages_required_est=pages_required,
        decode_budget=decode_budget,
        tokens_requested=tokens_requested,
        predicted_generated=sum(per_seq),
        predicted_pages_in_use=predicted_pages,
        kv_cache_bytes=kv_bytes,
        weight_bytes=weight_bytes,
        rejections=tuple(problems),
        warnings=tuple(warnings),
    )


def _device_memory(cfg: M9Config) -> Optional[int]:
    """Memory of the one chip a point decodes on: the preset's, else the host's RAM on CPU, else unknown."""
    a = cfg.accelerator
    if a.memory_gib is not None:
        return int(a.memory_gib * 2**30)
    if a.platform == "cpu":
        return host_memory_bytes()
    return None


def _max_position_embeddings(cfg: M9Config) -> Optional[int]:
    if cfg.model.checkpoint is None or not os.path.isdir(cfg.model.checkpoint):
        return None
    return checkpoint.read_config(Path(cfg.model.checkpoint)).get("max_position_embeddings")


def _rejected(cfg: M9Config, problems: list[str]) -> Plan:
    e = cfg.engine
    return Plan(
        num_prompts=cfg.workload.num_prompts or e.max_seqs,
        num_seqs=0,
        max_pages=e.max_pages or 0,
        max_pages_auto=e.max_pages is None,
        max_tokens_per_round=cfg.scheduler.max_tokens_per_round or e.max_seqs,
        max_prefill_size=e.max_prefill_size or 0,
        max_seqs_in_prefill=e.max_seqs_in_prefill or e.max_seqs,
        prompt_source=prompts.source(cfg.workload),
        prompt_lens=(),
        max_prefill_size_auto=e.max_prefill_size is None,
        pages_per_seq_est=0,
        pages_required_est=0,
        decode_budget=0,
        tokens_requested=0,
        predicted_generated=0,
        predicted_pages_in_use=0,
        kv_cache_bytes=0,
        weight_bytes=0,
        rejections=tuple(problems),
        warnings=(),
    )
