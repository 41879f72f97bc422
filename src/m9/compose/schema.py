"""The schema's door into Hydra: ``M9Config`` registered in Hydra's ConfigStore as the base every composed config is
validated against, and a composed config converted into the frozen schema, the only place a DictConfig is read."""

from __future__ import annotations

import dataclasses
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from m9.config import SECTIONS, M9Config

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


def from_hydra(cfg: DictConfig) -> M9Config:
    """Resolve and convert a composed config into the frozen schema. A value the schema refuses raises
    ``ConfigError`` (from the sections' own checks)."""
    for key in cfg:  # Hydra lets ``+section.key=...`` add keys to a structured config; the schema must refuse them
        node = cfg._get_node(key)
        if key not in SECTIONS:
            raise ValueError(f"{key}: not a key of M9Config")
        known = {f.name for f in dataclasses.fields(SECTIONS[key])}
        extra = [k for k in node if k not in known] if isinstance(node, DictConfig) else []
        if extra:
            raise ValueError(f"{key}.{extra[0]}: not a key of {SECTIONS[key].__name__}")
    merged = OmegaConf.merge(_thaw(OmegaConf.structured(M9Config)), cfg)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def flat_params(cfg: DictConfig) -> dict[str, Any]:
    """A composed config's values as run parameters (``engine.max_seqs``: ...), for a point the schema refused."""
    data = OmegaConf.to_container(cfg, resolve=True)
    return {f"{s}.{k}": v for s, values in data.items() if isinstance(values, dict) for k, v in values.items()}
