"""The workload section: what each round asks of the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from m9.config.checks import ConfigError, positive

PROMPT_SOURCES = ("prompts", "prompt_file", "prompt_template")
"""The text sources of ``WorkloadConfig``; none set means synthetic token prompts."""


@dataclass(frozen=True)
class WorkloadConfig:
    """What is asked of the engine in each round."""

    num_prompts: Optional[int] = None
    """Prompts per round. None: ``engine.max_seqs`` (the log's convention for a fair capacity comparison)."""
    prompt_len: int = 16
    """Tokens per synthetic prompt (text prompts take their lengths from the tokenizer)."""
    prompts: Optional[List[str]] = None
    """Text prompts, tokenized with ``model.tokenizer`` and repeated in order to make ``num_prompts``."""
    prompt_file: Optional[str] = None
    """A file of prompts: ``.jsonl`` (one JSON string, or object with ``prompt`` or ``text``, per line) or text
    (one prompt per line); repeated in order to make ``num_prompts``."""
    prompt_template: Optional[str] = None
    """One prompt per ``num_prompts`` from a format string, ``{i}`` the prompt's index (clones of
    ``n_generations`` share it): the log's ``"Prompt {i}: Provide a concise overview of topic {i}."``."""
    add_special_tokens: bool = True
    """Let the tokenizer add its special tokens to each text prompt (Llama 3's ``<|begin_of_text|>``), as a
    server does."""
    stop_sequences: List[str] = field(default_factory=list)
    """Strings that end a sequence when generated (tokenized with ``model.tokenizer``; at most
    ``engine.max_stop_seqs`` with the stop tokens, each at most ``engine.max_stop_tokens`` tokens long)."""
    stop_tokens: List[int] = field(default_factory=list)
    """Token ids that end a sequence (e.g. the tokenizer's end of turn); each counts as one stop sequence."""
    max_new_tokens: int = 256
    """Tokens to generate per sequence."""
    n_generations: int = 1
    """Sequences per prompt (Levanter clones the prompt's pages)."""
    n_rounds: int = 3
    """``generate`` calls, each a full reset + prefill + decode. Round 0 compiles; later rounds run its code (m9 lays
    the engine's state out as a round leaves it). Headline metrics come from the last round."""
    length_fixed: bool = False
    """Require every sequence to get exactly ``max_new_tokens``: a shortfall fails the trial instead of a note."""
    temperature: float = 0.0
    """Sampling temperature; 0 is greedy."""
    seed: int = 0
    """Seed for synthetic prompt tokens and sampling keys."""

    def __post_init__(self) -> None:
        positive("workload", num_prompts=self.num_prompts, prompt_len=self.prompt_len,
                  max_new_tokens=self.max_new_tokens, n_generations=self.n_generations, n_rounds=self.n_rounds)
        if self.temperature < 0:
            raise ConfigError(f"workload.temperature={self.temperature} must be >= 0")
        given = [k for k in PROMPT_SOURCES if getattr(self, k) is not None]
        if len(given) > 1:
            raise ConfigError(f"workload.{given[1]}: set one prompt source (workload.{given[0]} is set too)")

    @property
    def prompt_source(self) -> str:
        """Where the prompts come from: ``synthetic`` or the one text key set."""
        return next((k for k in PROMPT_SOURCES if getattr(self, k) is not None), "synthetic")
