"""Build the Llama model a trial decodes with: random weights from a seed, or a Hugging Face checkpoint."""

from __future__ import annotations

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
from levanter.layers.rotary import DefaultRotaryEmbeddingsConfig, Llama3RotaryEmbeddingsConfig
from levanter.models.llama import LlamaConfig, LlamaLMHeadModel

from m9.config import ModelConfig


class TokenIdsTokenizer:
    """Stand-in tokenizer for synthetic token prompts. Levanter calls ``decode`` on every finished sequence at every
    ingest, only for a debug line: say how many ids there are, in constant time, rather than render them all."""

    def decode(self, ids, skip_special_tokens: bool = True) -> str:  # noqa: D401 - engine's interface
        return f"<{len(ids)} token ids>"


def llama_config(cfg: ModelConfig, max_seq_len: int) -> LlamaConfig:
    """Levanter's ``LlamaConfig`` for the configured shape."""
    if cfg.rope_type == "llama3":
        rope = Llama3RotaryEmbeddingsConfig(theta=cfg.rope_theta)
    elif cfg.rope_type == "default":
        rope = DefaultRotaryEmbeddingsConfig(theta=cfg.rope_theta)
    else:
        raise ValueError(f"model.rope_type={cfg.rope_type!r} must be 'default' or 'llama3'")
    return LlamaConfig(
        max_seq_len=max_seq_len,
        hidden_dim=cfg.hidden_dim,
        intermediate_dim=cfg.intermediate_dim,
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        num_kv_heads=cfg.num_kv_heads,
        head_dim=cfg.head_dim,
        rope=rope,
        gradient_checkpointing=False,
    )


def build_model(cfg: ModelConfig, max_seq_len: int, compute_dtype: str) -> LlamaLMHeadModel:
    """Weights in the compute dtype, as a served checkpoint would be: random ones are initialised under jit (compiled,
    not op by op) and cast there, so a random 8B model takes the memory a real one does."""
    lcfg = llama_config(cfg, max_seq_len)
    dtype = jnp.dtype(compute_dtype)
    if cfg.checkpoint is not None:
        converter = lcfg.hf_checkpoint_converter(ref_checkpoint=cfg.checkpoint)
        return converter.load_pretrained(LlamaLMHeadModel, ref=cfg.checkpoint, dtype=dtype)
    vocab = hax.Axis("vocab", cfg.vocab_size)

    def init(key):
        model = lcfg.build(vocab, key=key)
        return jax.tree_util.tree_map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, model)

    return eqx.filter_jit(init)(jax.random.PRNGKey(cfg.seed))


def poison_weights(model: LlamaLMHeadModel) -> LlamaLMHeadModel:
    """Fault injection (``trial.inject_fault=nan_weights``): every floating weight becomes NaN."""
    return jax.tree_util.tree_map(lambda x: x * jnp.nan if eqx.is_inexact_array(x) else x, model)
