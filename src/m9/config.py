"""The schema: frozen dataclasses that a composed Hydra config converts into, once, at the entry point.

Knob names and meanings follow Levanter's ``InferenceEngineConfig`` so that a value typed here means what it means
there. Everything below the entry point receives an ``M9Config``, never a ``DictConfig``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf


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
    """KV cache dtype (a ``jax.numpy`` dtype name: ``bfloat16`` on accelerators, ``float32`` on CPU)."""
    hbm_utilization: float = 0.9
    """Fraction of device memory Levanter may give the KV cache; only used to report capacity here."""
    max_stop_seqs: int = 4
    """Stop sequences per active sequence (buffer capacity)."""
    max_stop_tokens: int = 16
    """Tokens per stop sequence (buffer capacity)."""
    seed: int = 0
    """Engine PRNG seed."""

    @property
    def imputed_max_seqs_in_prefill(self) -> int:
        """Sequences admitted per prefill batch, as the engine is built."""
        return self.max_seqs_in_prefill if self.max_seqs_in_prefill is not None else self.max_seqs


@dataclass(frozen=True)
class SchedulerConfig:
    """The engine's bounded decode planner (Levanter keeps these on the engine config too)."""

    max_tokens_per_round: Optional[int] = None
    """Tokens packed per inner decode step. None: ``engine.max_seqs`` (Levanter's default)."""
    max_rounds: int = 32
    """Inner decode steps per device-side loop invocation (one outer decode iteration)."""
    max_queued_tokens: int = 512
    """Token queue capacity between sampling and packing; must be >= max_seqs, tpr and max_seqs_in_prefill."""


@dataclass(frozen=True)
class ModelConfig:
    """A Llama-architecture model: its shape, and where its weights come from."""

    name: Optional[str] = None
    """Label recorded with every run. None: the checkpoint folder's name, else ``tiny``."""
    vocab_size: int = 256
    """Vocabulary size (synthetic prompts draw token ids below it). The shape keys from here to
    ``tie_word_embeddings`` are
    read from the checkpoint's ``config.json`` when ``checkpoint`` is set: values given here are then replaced."""
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

    @property
    def head_size(self) -> int:
        """Per-head width actually used."""
        return self.head_dim if self.head_dim is not None else self.hidden_dim // self.num_heads


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
    ``n_generations`` share it): the log's
    ``"Prompt {i}: Provide a concise overview of topic {i}."``."""
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
    """``generate`` calls, each a full reset + prefill + decode. Round 0 compiles and round 1 still recompiles the
    prefill for a used engine state; headline metrics come from the last round."""
    length_fixed: bool = False
    """Require every sequence to get exactly ``max_new_tokens``: a shortfall fails the trial instead of a note."""
    temperature: float = 0.0
    """Sampling temperature; 0 is greedy."""
    seed: int = 0
    """Seed for synthetic prompt tokens and sampling keys."""


@dataclass(frozen=True)
class TrackingConfig:
    """Where trial records go."""

    backend: str = "mlflow"
    """``mlflow`` or ``none``."""
    uri: Optional[str] = None
    """Tracking URI (``sqlite:///...`` or ``http://host:port``). None: ``$MLFLOW_TRACKING_URI`` or the local store."""
    experiment: str = "m9"
    """MLflow experiment name."""


@dataclass(frozen=True)
class AcceleratorConfig:
    """The hardware a point runs on (``conf/accelerator``: vendor data-sheet figures per chip). m9 decodes on one
    chip per engine process, so the planner checks weights plus KV cache against one chip's memory, and the
    roofline compares a point's bytes per second with one chip's bandwidth."""

    name: str = "cpu"
    """Label recorded with every run."""
    platform: Optional[str] = "cpu"
    """``JAX_PLATFORMS`` for the engine (``cpu``, ``tpu``, ``cuda``). None: JAX's own choice."""
    chips_per_host: int = 1
    """Accelerator chips per host."""
    memory_gib: Optional[float] = None
    """Memory per chip (GiB). None: the host's RAM on ``platform=cpu``, else unchecked."""
    bandwidth_gbps: Optional[float] = None
    """Memory bandwidth per chip (GB/s, HBM on accelerators). None: measured once per process that runs points, on
    its host (``platform=cpu``), else no roofline."""
    peak_tflops: Optional[float] = None
    """Peak dense bf16 TFLOP/s per chip (the roofline's ridge point). None: unknown."""


@dataclass(frozen=True)
class TrialConfig:
    """How one point is executed."""

    timeout_s: float = 1800.0
    """Wall-clock limit for the engine child process (s); past it the child is killed and the point is recorded."""
    memory_limit_gb: Optional[float] = None
    """Host memory (GiB, resident) the engine child may use; past it the child is killed and recorded as ``oom``."""
    plan_only: bool = False
    """Plan and print the points without running or tracking them (accepted points show as ``planned``)."""
    enforce_plan: bool = True
    """False runs a point the planner rejected (its reasons become notes): to watch the engine fail for real."""
    inject_fault: Optional[str] = None
    """Test-only fault in the child: ``sigkill``, ``hang``, ``nan_weights``, ``segfault``. Refused unless the
    environment has M9_ALLOW_FAULT_INJECTION=1, so it cannot be turned on by a stray override."""
    worker: str = "warm"
    """``warm``: points run one after another in one engine child that keeps its imports and model (discarded
    after any failure, another model, or memory growth); ``fresh``: a new interpreter per trial."""
    repeats: int = 1
    """Fresh trials of the point, grouped under it: its record gives the median, min and max of the throughput
    metrics, and it passes only if every trial passes."""


@dataclass(frozen=True)
class M9Config:
    """One point of an experiment, fully resolved."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    accelerator: AcceleratorConfig = field(default_factory=AcceleratorConfig)
    trial: TrialConfig = field(default_factory=TrialConfig)

    @property
    def imputed_num_prompts(self) -> int:
        """Prompts per round, as run: ``workload.num_prompts``, or one per slot (``engine.max_seqs``)."""
        w = self.workload
        return w.num_prompts if w.num_prompts is not None else self.engine.max_seqs


SCHEMA_NAME = "m9_schema"


def _thaw(node: DictConfig) -> DictConfig:
    # OmegaConf marks nodes built from frozen dataclasses read-only, which would forbid Hydra from merging the
    # group files onto the schema. Types and key sets stay enforced; freezing happens again in ``to_object``.
    OmegaConf.set_readonly(node, None)
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            _thaw(child)
    return node


def register_schema() -> None:
    """Register ``M9Config`` in Hydra's ConfigStore as the base every composed config is validated against, and
    the ``m9_mul`` resolver presets use to scale a knob with another (``max_pages: ${m9_mul:${.max_seqs},36}``)."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=_thaw(OmegaConf.structured(M9Config)))
    if not OmegaConf.has_resolver("m9_mul"):
        OmegaConf.register_new_resolver("m9_mul", lambda a, b: int(a) * int(b))


def _check_keys(node: DictConfig, schema: type, prefix: str) -> None:
    # Hydra lets ``+section.key=...`` add keys to a structured config; the schema must still refuse them.
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key in node:
        if key not in fields:
            raise ValueError(f"{prefix}{key}: not a key of {schema.__name__}")
        child = node._get_node(key)
        sub = fields[key].type
        if isinstance(child, DictConfig) and isinstance(sub, str) and sub in globals():
            _check_keys(child, globals()[sub], f"{prefix}{key}.")


def from_hydra(cfg: DictConfig) -> M9Config:
    """Resolve and convert a composed config into the frozen schema (the only place a DictConfig is read)."""
    _check_keys(cfg, M9Config, "")
    merged = OmegaConf.merge(_thaw(OmegaConf.structured(M9Config)), cfg)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def to_dict(cfg: M9Config) -> dict[str, Any]:
    """Plain nested dict of a config (JSON-safe)."""
    return dataclasses.asdict(cfg)


def from_dict(data: dict[str, Any]) -> M9Config:
    """Inverse of :func:`to_dict`; unknown keys fail loudly."""
    sections = {f.name: f.type for f in dataclasses.fields(M9Config)}
    kwargs = {}
    for name, value in data.items():
        if name not in sections:
            raise KeyError(f"unknown config section {name!r}")
        kwargs[name] = globals()[sections[name]](**value)
    return M9Config(**kwargs)


def flatten(cfg: M9Config) -> dict[str, Any]:
    """``{"engine.max_seqs": 8, ...}``: the form recorded as run parameters."""
    return {f"{section}.{key}": value for section, values in to_dict(cfg).items() for key, value in values.items()}
