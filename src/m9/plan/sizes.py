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


def kv_cache_bytes_per_chip(cfg: M9Config, pages: int) -> int:
    """One chip's part of the KV cache: split over the model axis by ``kv_head`` when the mesh maps it, else all."""
    return kv_cache_bytes(cfg, pages) // cfg.shards("kv_head")


def _norm_params(cfg: M9Config) -> int:
    return (2 * cfg.model.num_layers + 1) * cfg.model.hidden_dim


def padded_vocab(cfg: M9Config) -> int:
    """The vocabulary as the model is built: padded to a multiple of the model axis when ``vocab`` is split."""
    parts = cfg.shards("vocab")
    return -(-cfg.model.vocab_size // parts) * parts


def _params_per_chip(cfg: M9Config, split: bool) -> int:
    """Parameters one chip holds (``split``: each array divided as the mesh divides it; else the whole model):
    q/k/v by ``kv_head``, the output projection by ``heads``, the MLP by ``mlp``, embeddings and LM head by
    ``vocab``; norms on every chip."""
    m, E = cfg.model, cfg.model.hidden_dim
    kv, heads, mlp, vocab = (cfg.shards(a) if split else 1 for a in ("kv_head", "heads", "mlp", "vocab"))
    qkv = E * (m.num_heads + 2 * m.num_kv_heads) * m.head_size // kv
    out = m.num_heads * m.head_size * E // heads
    ffn = 3 * E * m.intermediate_dim // mlp
    tables = (1 if m.tie_word_embeddings else 2) * padded_vocab(cfg) * E // vocab  # embeddings, LM head
    return m.num_layers * (qkv + out + ffn) + tables + _norm_params(cfg)


def weight_bytes(cfg: M9Config) -> int:
    """Every parameter in the compute dtype (a tied LM head shares the embedding matrix)."""
    return _params_per_chip(cfg, split=False) * DTYPE_BYTES[cfg.engine.compute_dtype]


def weight_bytes_per_chip(cfg: M9Config) -> int:
    """The weights one chip of the mesh holds: its shard of every split array, and every array not split."""
    return _params_per_chip(cfg, split=True) * DTYPE_BYTES[cfg.engine.compute_dtype]


def step_weight_bytes_per_chip(cfg: M9Config) -> int:
    """What one decode step reads of the weights on one chip of the mesh: its shards of every multiplied matrix
    (the LM head by ``vocab``) and the norms (the embedding lookup reads only the rows of the tokens it embeds)."""
    m = cfg.model
    embedding = 0 if m.tie_word_embeddings else padded_vocab(cfg) * m.hidden_dim // cfg.shards("vocab")
    return (_params_per_chip(cfg, split=True) - embedding) * DTYPE_BYTES[cfg.engine.compute_dtype]


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
