"""The engine's sections: the paged KV cache and admission capacities, and the decode scheduler (Levanter's
``InferenceEngineConfig`` keeps both)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from m9.config.checks import ConfigError, one_of, positive

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "float8_e4m3fn": 1, "float8_e5m2": 1}
"""The compute dtypes m9 plans for, and their sizes in bytes."""


@dataclass(frozen=True)
class EngineConfig:
    """Paged KV cache and admission capacities of Levanter's ``InferenceEngine``."""

    max_seq_len: int = 512
    """Longest sequence a slot can hold, prompt included (tokens). Fixes the page-table width."""
    page_size: int = 16
    """Tokens per KV page."""
    max_pages: Optional[int] = None
    """KV pages in the cache. None: m9 sizes it to the workload's page estimate and records the value used."""
    max_seqs: int = 8
    """Concurrent sequence slots (fixes the decode batch shape)."""
    max_seqs_in_prefill: Optional[int] = None
    """Sequences admitted per prefill batch; prompts beyond it are silently not served by the engine. None:
    ``max_seqs`` (every prompt in one prefill, the log's convention)."""
    max_prefill_size: Optional[int] = None
    """Tokens packed per prefill batch. None: every prompt of the round, at least Levanter's default of one full
    sequence (``page_size * ceil(max_seq_len / page_size)``); the value used is recorded."""
    compute_dtype: str = "float32"
    """Weights, activations and KV cache dtype (``bfloat16`` on accelerators, ``float32`` on CPU)."""
    hbm_utilization: float = 0.9
    """Fraction of one chip's memory the planner lets weights, KV cache and engine state take."""
    max_stop_seqs: int = 4
    """Stop sequences per active sequence (buffer capacity)."""
    max_stop_tokens: int = 16
    """Tokens per stop sequence (buffer capacity)."""
    seed: int = 0
    """Engine PRNG seed."""

    def __post_init__(self) -> None:
        positive("engine", max_seq_len=self.max_seq_len, page_size=self.page_size, max_pages=self.max_pages,
                  max_seqs=self.max_seqs, max_seqs_in_prefill=self.max_seqs_in_prefill,
                  max_prefill_size=self.max_prefill_size)
        if self.max_stop_seqs < 0 or self.max_stop_tokens < 0:
            raise ConfigError("engine.max_stop_seqs and engine.max_stop_tokens must be >= 0")
        one_of("engine.compute_dtype", self.compute_dtype, tuple(DTYPE_BYTES))
        if not 0 < self.hbm_utilization <= 1:
            raise ConfigError(f"engine.hbm_utilization={self.hbm_utilization} must be in (0, 1]")

    @property
    def imputed_max_seqs_in_prefill(self) -> int:
        """Sequences admitted per prefill batch, as the engine is built."""
        return self.max_seqs_in_prefill if self.max_seqs_in_prefill is not None else self.max_seqs

    @property
    def pages_per_seq(self) -> int:
        """Width of the page table: pages a slot of ``max_seq_len`` tokens can hold."""
        return -(-self.max_seq_len // self.page_size)


@dataclass(frozen=True)
class SchedulerConfig:
    """The engine's bounded decode planner (Levanter keeps these on the engine config too)."""

    max_tokens_per_round: Optional[int] = None
    """Tokens packed per inner decode step. None: ``engine.max_seqs`` (Levanter's default)."""
    max_rounds: int = 32
    """Inner decode steps per device-side loop invocation (one outer decode iteration)."""
    max_queued_tokens: int = 512
    """Token queue capacity between sampling and packing; must be >= max_seqs, tpr and max_seqs_in_prefill."""

    def __post_init__(self) -> None:
        positive("scheduler", max_tokens_per_round=self.max_tokens_per_round, max_rounds=self.max_rounds,
                  max_queued_tokens=self.max_queued_tokens)
