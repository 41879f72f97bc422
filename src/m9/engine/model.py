"""Build the Llama model a trial decodes with: random weights from a seed, or a Hugging Face checkpoint."""

from __future__ import annotations

import dataclasses
from typing import Optional

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
from haliax.partitioning import ResourceAxis
from jax.sharding import Mesh
from levanter.layers.rotary import (
    DefaultRotaryEmbeddingsConfig,
    Llama3RotaryEmbeddingsConfig,
)
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
        tie_word_embeddings=cfg.tie_word_embeddings,
        gradient_checkpointing=False,
    )


def build_model(cfg: ModelConfig, max_seq_len: int, compute_dtype: str, mesh: Optional[Mesh] = None
                ) -> LlamaLMHeadModel:
    """Weights in the compute dtype, as a served checkpoint would be. Random ones are initialised under jit
    (compiled, not op by op) and cast there, so a random 8B model takes the memory a real one does; on ``mesh``
    (entered with the point's axis mapping, ``m9.engine.mesh.on``) each chip initialises only its own shards."""
    dtype = jnp.dtype(compute_dtype)
    if cfg.checkpoint is not None:
        return load_checkpoint(cfg, max_seq_len, dtype, mesh)
    lcfg = llama_config(cfg, max_seq_len)
    vocab = hax.Axis("vocab", cfg.vocab_size)
    if mesh is not None:
        vocab = hax.partitioning.round_axis_for_partitioning(vocab)  # padded to the model axis when split

    def init(key):
        model = lcfg.build(vocab, key=key)
        model = jax.tree_util.tree_map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, model)
        return hax.shard(model) if mesh is not None else model

    return eqx.filter_jit(init)(jax.random.PRNGKey(cfg.seed))


class _VocabOnly:
    """What Levanter's converter asks of a tokenizer when loading weights: its size. The tokenizer itself stays with
    the planning process (prompts arrive as token ids), so loading never reads or downloads one."""

    def __init__(self, size: int):
        self.size = size

    def __len__(self) -> int:
        return self.size


def load_checkpoint(cfg: ModelConfig, max_seq_len: int, dtype, mesh: Optional[Mesh] = None) -> LlamaLMHeadModel:
    """A local Hugging Face Llama checkpoint through Levanter's converter: the architecture from its config.json
    (norm epsilon, tied embeddings, rope scaling included), the slot length from the engine. Levanter's safetensors
    reader places the arrays on the mesh with the axis mapping in context (one device without a mesh)."""
    from levanter.compat.hf_checkpoints import HFCheckpointConverter
    from transformers import LlamaConfig as HfLlamaConfig

    converter = HFCheckpointConverter(LlamaConfig, reference_checkpoint=cfg.checkpoint, HfConfigClass=HfLlamaConfig,
                                      tokenizer=_VocabOnly(cfg.vocab_size))
    # Levanter's from_hf_config leaves head_dim to hidden/heads: take the checkpoint's, as the planner did
    lcfg = dataclasses.replace(converter.config_from_hf_checkpoint(cfg.checkpoint), max_seq_len=max_seq_len,
                               head_dim=cfg.head_dim, gradient_checkpointing=False)
    if mesh is not None:
        return converter.load_pretrained(LlamaLMHeadModel, ref=cfg.checkpoint, config=lcfg, dtype=dtype)
    mesh = Mesh(np.array(jax.devices()[:1]).reshape(1, 1), (ResourceAxis.DATA, ResourceAxis.MODEL))
    with hax.partitioning.set_mesh(mesh):
        return converter.load_pretrained(LlamaLMHeadModel, ref=cfg.checkpoint, config=lcfg, dtype=dtype)


def poison_weights(model: LlamaLMHeadModel) -> LlamaLMHeadModel:
    """Fault injection (``trial.inject_fault=nan_weights``): every floating weight becomes NaN."""
    return jax.tree_util.tree_map(lambda x: x * jnp.nan if eqx.is_inexact_array(x) else x, model)
