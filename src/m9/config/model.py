"""The model section: a Llama's shape, and where its weights and tokenizer come from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from m9.config.checks import ConfigError, one_of, positive


@dataclass(frozen=True)
class ModelConfig:
    """A Llama-architecture model: its shape, and where its weights come from."""

    name: Optional[str] = None
    """Label recorded with every run. None: the checkpoint folder's name, else ``tiny``."""
    vocab_size: int = 256
    """Vocabulary size (synthetic prompts draw token ids below it). The shape keys from here to
    ``tie_word_embeddings`` are read from the checkpoint's ``config.json`` when ``checkpoint`` is set: values given
    here are then replaced."""
    hidden_dim: int = 64
    """Model width."""
    intermediate_dim: int = 128
    """MLP width."""
    num_layers: int = 2
    """Transformer layers."""
    num_heads: int = 4
    """Query heads."""
    num_kv_heads: int = 2
    """Key/value heads (GQA): with head size, this sets KV bytes per token."""
    head_dim: Optional[int] = None
    """Head size. None: ``hidden_dim // num_heads``."""
    rope_theta: float = 10000.0
    """RoPE base frequency."""
    rope_type: str = "default"
    """``default`` or ``llama3`` (Llama 3's frequency scaling)."""
    tie_word_embeddings: bool = False
    """The LM head shares the embedding matrix (Llama 3.2 1B/3B)."""
    checkpoint: Optional[str] = None
    """A local Hugging Face Llama checkpoint folder (``config.json`` + safetensors), loaded through Levanter's
    converter; nothing is downloaded at run time. None: random weights from ``seed`` (the default for capacity
    sweeps: fixed-length throughput does not depend on weight values)."""
    tokenizer: Optional[str] = None
    """A local tokenizer folder (or ``tokenizer.json`` file) for text prompts and stop sequences. None: the
    checkpoint's folder when it holds a tokenizer; else none (synthetic token prompts only)."""
    seed: int = 0
    """Seed for random weights."""

    def __post_init__(self) -> None:
        positive("model", vocab_size=self.vocab_size, hidden_dim=self.hidden_dim,
                  intermediate_dim=self.intermediate_dim, num_layers=self.num_layers, num_heads=self.num_heads,
                  num_kv_heads=self.num_kv_heads, head_dim=self.head_dim)
        if self.checkpoint is None:  # a checkpoint's rope is Levanter's to read (m9.inputs.checkpoint checks it)
            one_of("model.rope_type", self.rope_type, ("default", "llama3"))
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(f"model.num_heads={self.num_heads} must be a multiple of "
                              f"model.num_kv_heads={self.num_kv_heads}")

    @property
    def head_size(self) -> int:
        """Per-head width actually used."""
        return self.head_dim if self.head_dim is not None else self.hidden_dim // self.num_heads
