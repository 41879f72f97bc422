"""Capacity and budget arithmetic for one point: what it will need, what it will produce, and whether it can run.

Pure arithmetic on the typed config; imports no JAX, so a rejected point costs microseconds. The formulas are the
ones the experiment log validated against Levanter's engine:

- pages per sequence (the log's estimate, used to size and validate ``max_pages``):
  ``ceil((prompt_len + max_new_tokens) / page_size)``
- pages the engine actually holds for a sequence that got ``g`` tokens: ``ceil((prompt_len + g - 1) / page_size)``
  (the last sampled token is never written to the cache)
- decode budget per ``generate`` call: ``floor(max_seq_len / max_rounds) * max_rounds * min(tpr, max_seqs)``; the
  prefill samples one more token per admitted sequence, and a budget short of the ask truncates sequences evenly.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """Effective prefill buffer size in tokens."""
    pages_per_seq_est: int
    """The log's per-sequence page estimate."""
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
    """Model parameters at float32 (random init) or compute dtype (checkpoint)."""
    rejections: tuple[str, ...]
    """Reasons this point cannot run as configured; empty when it may run."""
    warnings: tuple[str, ...]
    """Things that will not stop the run but change what it measures."""

    @property
    def accepted(self) -> bool:
        """True when the point may run."""
        return not self.rejections

    @property
    def truncation_predicted(self) -> bool:
        """True when the decode budget is short of the ask and sequences will be cut evenly."""
        return self.predicted_generated < self.tokens_requested


def _generated_per_seq(num_seqs: int, max_new_tokens: int, decode_budget: int) -> list[int]:
    """Tokens each sequence gets: one from prefill, then an even share of the decode budget, capped at the ask."""
    total = min(num_seqs * max_new_tokens, num_seqs + decode_budget)
    base, extra = divmod(total, num_seqs)
    return [base + 1] * extra + [base] * (num_seqs - extra)


def _param_count(cfg: M9Config) -> int:
    m = cfg.model
    hd = m.head_size
    attn = m.hidden_dim * m.num_heads * hd * 2 + m.hidden_dim * m.num_kv_heads * hd * 2
    mlp = 3 * m.hidden_dim * m.intermediate_dim
    per_layer = attn + mlp + 2 * m.hidden_dim
    return 2 * m.vocab_size * m.hidden_dim + m.num_layers * per_layer + m.hidden_dim


def make_plan(cfg: M9Config) -> Plan:
    """Plan one point: resolve defaults, predict pages and tokens, and list every reason it cannot run."""
    e, s, w, m = cfg.engine, cfg.scheduler, cfg.workload, cfg.model
    problems: list[str] = []
    warnings: list[str] = []

    positive = {
        "engine.max_seq_len": e.max_seq_len,
        "engine.page_size": e.page_size,
        "engine.max_seqs": e.max_seqs,
        "engine.max_seqs_in_prefill": e.max_seqs_in_prefill,
        "scheduler.max_rounds": s.max_rounds,
        "scheduler.max_queued_tokens": s.max_queued_tokens,
        "workload.prompt_len": w.prompt_len,
        "workload.max_new_tokens": w.max_new_tokens,
        "workload.n_generations": w.n_generations,
        "workload.n_rounds": w.n_rounds,
        "model.vocab_size": m.vocab_size,
        "model.num_layers": m.num_layers,
        "model.num_heads": m.num_heads,
        "model.num_kv_heads": m.num_kv_heads,
        "model.hidden_dim": m.hidden_dim,
        "model.intermediate_dim": m.intermediate_dim,
        "trial.timeout_s": cfg.trial.timeout_s,
    }
    optional_positive = {
        "engine.max_pages": e.max_pages,
        "engine.max_prefill_size": e.max_prefill_size,
        "scheduler.max_tokens_per_round": s.max_tokens_per_round,
        "workload.num_prompts": w.num_prompts,
        "model.head_dim": m.head_dim,
    }
    for key, value in {**positive, **{k: v for k, v in optional_positive.items() if v is not None}}.items():
        if value <= 0:
            problems.append(f"{key}={value} must be > 0")
    if w.temperature < 0:
        problems.append(f"workload.temperature={w.temperature} must be >= 0")
    if e.compute_dtype not in DTYPE_BYTES:
        problems.append(f"engine.compute_dtype={e.compute_dtype!r} is not one of {sorted(DTYPE_BYTES)}")
    if not 0 < e.hbm_utilization <= 1:
        problems.append(f"engine.hbm_utilization={e.hbm_utilization} must be in (0, 1]")
    if cfg.tracking.backend not in ("mlflow", "none"):
        problems.append(f"tracking.backend={cfg.tracking.backend!r} must be 'mlflow' or 'none'")
    if problems:  # the arithmetic below needs sane sizes
        return _rejected(cfg, problems)

    num_prompts = w.num_prompts if w.num_prompts is not None else e.max_seqs
    num_seqs = num_prompts * w.n_generations
    tpr = s.max_tokens_per_round if s.max_tokens_per_round is not None else e.max_seqs
    prefill_size = e.max_prefill_size if e.max_prefill_size is not None else e.page_size * _ceil_div(
        e.max_seq_len, e.page_size
    )
    pages_per_seq_est = _ceil_div(w.prompt_len + w.max_new_tokens, e.page_size)
    pages_required = pages_per_seq_est * num_seqs
    max_pages = e.max_pages if e.max_pages is not None else pages_required
    decode_budget = (e.max_seq_len // s.max_rounds) * s.max_rounds * min(tpr, e.max_seqs)
    per_seq = _generated_per_seq(num_seqs, w.max_new_tokens, decode_budget)
    predicted_pages = sum(_ceil_div(w.prompt_len + g - 1, e.page_size) for g in per_seq)
    tokens_requested = num_seqs * w.max_new_tokens

    if max_pages < pages_required:
        problems.append(
            f"engine.max_pages={max_pages} is too small for {num_seqs} sequences x "
            f"ceil(({w.prompt_len}+{w.max_new_tokens})/{e.page_size})={pages_per_seq_est} pages "
            f"(est. {pages_required} pages needed)"
        )
    if e.max_seqs < num_seqs:
        problems.append(f"engine.max_seqs={e.max_seqs} < {num_seqs} sequences per round (prompts x n_generations)")
    if e.max_seqs_in_prefill < num_prompts:
        problems.append(
            f"engine.max_seqs_in_prefill={e.max_seqs_in_prefill} must cover all prompts per round ({num_prompts}); "
            "the engine would silently leave the rest unserved"
        )
    if prefill_size < num_prompts * w.prompt_len:
        problems.append(
            f"engine.max_prefill_size={prefill_size} < {num_prompts} prompts x {w.prompt_len} tokens "
            f"= {num_prompts * w.prompt_len}; the engine would silently leave prompts unserved"
        )
    if e.max_seq_len < w.prompt_len + w.max_new_tokens:
        problems.append(
            f"engine.max_seq_len={e.max_seq_len} < prompt_len + max_new_tokens = {w.prompt_len + w.max_new_tokens}"
        )
    if s.max_rounds > e.max_seq_len:
        problems.append(
            f"scheduler.max_rounds={s.max_rounds} > engine.max_seq_len={e.max_seq_len}: the decode loop would never run"
        )
    needed_queue = max(e.max_seqs, tpr, e.max_seqs_in_prefill)
    if s.max_queued_tokens < needed_queue:
        problems.append(
            f"scheduler.max_queued_tokens={s.max_queued_tokens} must be >= max(max_seqs={e.max_seqs}, "
            f"max_tokens_per_round={tpr}, max_seqs_in_prefill={e.max_seqs_in_prefill}) = {needed_queue}"
        )
    if not problems and sum(per_seq) < tokens_requested:
        short = (
            f"decode budget floor({e.max_seq_len}/{s.max_rounds})*{s.max_rounds}*min({tpr},{e.max_seqs})="
            f"{decode_budget} + {num_seqs} prefill tokens < {num_seqs} x {w.max_new_tokens} = {tokens_requested}: "
            f"generation will plateau at {sum(per_seq)} tokens"
        )
        (problems if w.length_fixed else warnings).append(short)
    if w.n_generations > 1:
        warnings.append("page predictions assume no prompt-page sharing between clones (n_generations > 1)")

    dtype_bytes = DTYPE_BYTES[e.compute_dtype]
    kv_bytes = 2 * m.num_layers * m.num_kv_heads * m.head_size * e.page_size * max_pages * dtype_bytes
    weight_bytes = _param_count(cfg) * (dtype_bytes if m.checkpoint else 4)
    return Plan(
        num_prompts=num_prompts,
        num_seqs=num_seqs,
        max_pages=max_pages,
        max_pages_auto=e.max_pages is None,
        max_tokens_per_round=tpr,
        max_prefill_size=prefill_size,
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


def _rejected(cfg: M9Config, problems: list[str]) -> Plan:
    e = cfg.engine
    return Plan(
        num_prompts=cfg.workload.num_prompts or e.max_seqs,
        num_seqs=0,
        max_pages=e.max_pages or 0,
        max_pages_auto=e.max_pages is None,
        max_tokens_per_round=cfg.scheduler.max_tokens_per_round or e.max_seqs,
        max_prefill_size=e.max_prefill_size or 0,
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
