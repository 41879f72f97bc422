"""What a point holds and moves, in bytes: weights, the KV cache per token, the engine's state. Pure arithmetic over
the schema, shared by the planner (what must fit one chip) and the roofline (what a decode step reads)."""

from __future__ import annotations

from m9.config import DTYPE_BYTES, M9Config


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


def kv_cache_bytes(cfg: M9Config, pages: int) -> int:
    """The KV cache at ``pages`` pages."""
    return kv_bytes_per_token(cfg) * cfg.engine.page_size * pages


def _norm_params(cfg: M9Config) -> int:
    return (2 * cfg.model.num_layers + 1) * cfg.model.hidden_dim


def weight_bytes(cfg: M9Config) -> int:
    """Every parameter in the compute dtype (a tied LM head shares the embedding matrix)."""
    m = cfg.model
    embedding = 0 if m.tie_word_embeddings else m.vocab_size * m.hidden_dim
    return (matmul_params(cfg) + embedding + _norm_params(cfg)) * DTYPE_BYTES[cfg.engine.compute_dtype]


def step_weight_bytes(cfg: M9Config) -> int:
    """Weight bytes one decode step reads: every multiplied matrix and the norms (the embedding lookup reads only
    the rows of the tokens it embeds)."""
    return (matmul_params(cfg) + _norm_params(cfg)) * DTYPE_BYTES[cfg.engine.compute_dtype]


def state_bytes(cfg: M9Config, prefill_size: int) -> int:
    """Levanter's buffers that grow with the slots and their length, beside the KV cache: the decode state's
    tokens and logprobs (i32 + f32 per slot and position), the sequence table's page lists (two i32 per slot and
    page), the stop buffers, the prefill batch's prompt rows (i32, built on the host and copied to the device), the
    token queues, and the logits of a prefill batch and of one decode step (vocabulary wide, compute dtype)."""
    e, m = cfg.engine, cfg.model
    slots = e.max_seqs * (8 * e.max_seq_len + 8 * e.pages_per_seq + 4 * e.max_stop_seqs * e.max_stop_tokens)
    prefill = 8 * e.imputed_max_seqs_in_prefill * e.max_seq_len + 12 * prefill_size
    logits = (prefill_size + cfg.imputed_max_tokens_per_round) * m.vocab_size * DTYPE_BYTES[e.compute_dtype]
    return slots + prefill + 12 * cfg.scheduler.max_queued_tokens + logits
