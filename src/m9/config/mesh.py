"""The mesh section: how a point's model and KV cache are laid out over the chips of a host, or of a slice."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from m9.config.checks import ConfigError, one_of, positive

MESH_AXES = ("kv_head", "heads", "mlp", "vocab")
"""Levanter's named axes that can be split over the model axis: ``kv_head`` (the q/k/v projections' output and the
KV cache), ``heads`` (the output projection's input), ``mlp`` (the MLP), ``vocab`` (embeddings and the LM head)."""


@dataclass(frozen=True)
class MeshConfig:
    """A (data, model) device mesh, as Levanter's engine takes it (the haliax axis mapping)."""

    model: Optional[int] = None
    """Chips on the model axis (tensor parallel): the named ``axes`` are split over them. None: every chip of one
    host (``accelerator.chips_per_host``; 1 on ``accelerator=cpu``), or of the slice with ``hosts=global``."""
    data: int = 1
    """Copies of the model and its KV cache on the data axis. The engine's decode state has no batch axis, so in
    this Levanter release a copy adds no decode parallelism: it costs its memory on every chip."""
    axes: List[str] = field(default_factory=lambda: ["kv_head", "heads", "mlp"])
    """Named axes split over the model axis (``kv_head``, ``heads``, ``mlp``, ``vocab``; the vocabulary is padded to
    a multiple of the model axis). Levanter's trainer default leaves ``kv_head`` out, which copies the q/k/v
    projections and the whole KV cache to every chip."""
    hosts: str = "replicas"
    """A point run as several processes (SLURM tasks, one per host): ``replicas``, each process decodes its own copy
    on its own host's chips (host-data-parallel, nothing waits on a peer); ``global``, one mesh over every process's
    chips (``accelerator.hosts`` of them, the same share from each): one model, one KV cache, every process calling
    the same jitted functions on identical requests, process 0 recording."""

    def __post_init__(self) -> None:
        positive("mesh", model=self.model, data=self.data)
        one_of("mesh.hosts", self.hosts, ("replicas", "global"))
        unknown = [a for a in self.axes if a not in MESH_AXES]
        if unknown:
            raise ConfigError(f"mesh.axes: {unknown[0]!r} is not one of {', '.join(MESH_AXES)}")
        if len(set(self.axes)) < len(self.axes):
            raise ConfigError(f"mesh.axes={list(self.axes)} names an axis twice")

    @property
    def mapping(self) -> dict[str, str]:
        """The haliax axis mapping: each named axis to the mesh's ``model`` axis."""
        return {axis: "model" for axis in self.axes}
