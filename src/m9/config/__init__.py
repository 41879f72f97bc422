"""The schema: frozen dataclasses that a composed Hydra config converts into, once, at the entry point
(``m9.compose.from_hydra``), with their checks and derived values.

Knob names and meanings follow Levanter's ``InferenceEngineConfig``, so a value typed here means what it means there.
As there, each section checks its own values in ``__post_init__`` and the cross-section rules run on the whole config;
a value no point could run with raises ``ConfigError``, one line naming the key. Values derived from knobs left unset
are properties (``imputed_*``), computed here and nowhere else. Standard library only: the engine child reads it too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from m9.config.checks import ConfigError
from m9.config.engine import DTYPE_BYTES, EngineConfig, SchedulerConfig
from m9.config.mesh import MESH_AXES, MeshConfig
from m9.config.model import ModelConfig
from m9.config.run import FAULTS, AcceleratorConfig, TrackingConfig, TrialConfig
from m9.config.workload import PROMPT_SOURCES, WorkloadConfig

__all__ = ["DTYPE_BYTES", "FAULTS", "MESH_AXES", "PROMPT_SOURCES", "SECTIONS", "AcceleratorConfig", "ConfigError",
           "EngineConfig", "M9Config", "MeshConfig", "ModelConfig", "SchedulerConfig", "TrackingConfig", "TrialConfig",
           "WorkloadConfig", "flatten", "from_dict", "is_integer_type", "key_type", "to_dict"]


@dataclass(frozen=True)
class M9Config:
    """One point of an experiment, fully resolved."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    accelerator: AcceleratorConfig = field(default_factory=AcceleratorConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)
    trial: TrialConfig = field(default_factory=TrialConfig)

    def __post_init__(self) -> None:
        e, tpr = self.engine, self.imputed_max_tokens_per_round
        needed = max(e.max_seqs, tpr, e.imputed_max_seqs_in_prefill)  # Levanter's InferenceEngineConfig rule
        if self.scheduler.max_queued_tokens < needed:
            raise ConfigError(
                f"scheduler.max_queued_tokens={self.scheduler.max_queued_tokens} must be >= max(engine.max_seqs="
                f"{e.max_seqs}, max_tokens_per_round={tpr}, engine.max_seqs_in_prefill="
                f"{e.imputed_max_seqs_in_prefill}) = {needed}")

    @property
    def imputed_max_tokens_per_round(self) -> int:
        """Tokens packed per inner decode step, as the engine is built (Levanter's default: ``max_seqs``)."""
        tpr = self.scheduler.max_tokens_per_round
        return tpr if tpr is not None else self.engine.max_seqs

    @property
    def imputed_num_prompts(self) -> int:
        """Prompts per round, as run: ``workload.num_prompts``, or one per slot (``engine.max_seqs``)."""
        w = self.workload
        return w.num_prompts if w.num_prompts is not None else self.engine.max_seqs

    @property
    def num_seqs(self) -> int:
        """Sequences per round: prompts x ``n_generations``."""
        return self.imputed_num_prompts * self.workload.n_generations

    @property
    def mesh_shape(self) -> tuple[int, int]:
        """The engine's (data, model) mesh: ``mesh.model`` defaults to every chip the mesh may use (one host's, or
        with ``mesh.hosts=global`` the slice's)."""
        m = self.mesh
        return m.data, m.model if m.model is not None else self.mesh_chips_available

    @property
    def mesh_chips_available(self) -> int:
        """Chips a mesh may span: one host's, or with ``mesh.hosts=global`` every host's of the slice."""
        a = self.accelerator
        return a.chips_per_host * (a.hosts if self.mesh.hosts == "global" else 1)

    @property
    def chips(self) -> int:
        """Chips the point's mesh decodes on (one process's, or every process's of a global mesh)."""
        data, model = self.mesh_shape
        return data * model

    def shards(self, axis: str) -> int:
        """Parts a named axis is split into: the model axis when ``mesh.axes`` maps it, else 1 (a copy per chip)."""
        return self.mesh_shape[1] if axis in self.mesh.axes else 1

    @property
    def decode_width(self) -> int:
        """Sequences one inner decode step can advance: ``min(max_tokens_per_round, max_seqs)``."""
        return min(self.imputed_max_tokens_per_round, self.engine.max_seqs)


SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(M9Config)}
"""Each section's name and dataclass."""


def key_type(key: str) -> str | None:
    """The schema's type of ``section.name`` as written (``int``, ``Optional[int]``, ``bool``), None when the schema
    has no such key."""
    section, _, name = key.lstrip("+~").partition(".")
    fields = {f.name: str(f.type) for f in dataclasses.fields(SECTIONS[section])} if section in SECTIONS else {}
    return fields.get(name)


def is_integer_type(written: str) -> bool:
    """True for ``int`` and ``Optional[int]`` (not ``bool``)."""
    return "int" in written and "bool" not in written


def to_dict(cfg: M9Config) -> dict[str, Any]:
    """Plain nested dict of a config (JSON-safe)."""
    return dataclasses.asdict(cfg)


def from_dict(data: dict[str, Any]) -> M9Config:
    """Inverse of :func:`to_dict`; unknown sections or keys fail loudly."""
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise KeyError(f"unknown config section {sorted(unknown)[0]!r}")
    return M9Config(**{name: SECTIONS[name](**value) for name, value in data.items()})


def flatten(cfg: M9Config) -> dict[str, Any]:
    """``{"engine.max_seqs": 8, ...}``: the form recorded as run parameters."""
    return {f"{section}.{key}": value for section, values in to_dict(cfg).items() for key, value in values.items()}
