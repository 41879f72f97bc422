"""Whether a point's mesh can be laid over the chips it is given, and whether one chip's share of it fits one chip:
the planner's mesh and memory checks. Pure arithmetic over the schema (``m9.plan.sizes``), no JAX."""

from __future__ import annotations

from typing import Optional

from m9.config import M9Config
from m9.plan.sizes import kv_bytes_per_token, kv_cache_bytes_per_chip, state_bytes, weight_bytes, weight_bytes_per_chip

_SPLIT_SIZES = {"kv_head": "num_kv_heads", "heads": "num_heads", "mlp": "intermediate_dim"}
"""The model size each split axis has (``vocab`` is padded instead)."""


def size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def mesh_refusals(cfg: M9Config, processes: Optional[int] = None) -> list[str]:
    """A mesh the host (or, ``mesh.hosts=global``, the slice) cannot give, a global mesh run as another number of
    processes than the slice has hosts (``processes``: the point's, when known), or a model its model axis cannot
    split (JAX would raise inside the engine)."""
    data, model = cfg.mesh_shape
    a, chips = cfg.accelerator, cfg.chips
    if cfg.mesh.hosts == "global":
        if chips > cfg.mesh_chips_available:
            return [f"mesh.data={data} x mesh.model={model} = {chips} chips > the {cfg.mesh_chips_available} of the "
                    f"{a.name} slice (accelerator.hosts={a.hosts} x chips_per_host={a.chips_per_host})"]
        if chips % a.hosts:
            return [f"mesh.hosts=global: mesh.data={data} x mesh.model={model} = {chips} chips do not split evenly "
                    f"over accelerator.hosts={a.hosts} (every process gives the mesh the same share)"]
        if processes is not None and processes != a.hosts:
            return [f"mesh.hosts=global spans accelerator.hosts={a.hosts} processes, one per host; this point runs "
                    f"as {processes} (hydra.launcher.nodes x tasks_per_node)"]
    elif chips > a.chips_per_host:
        return [f"mesh.data={data} x mesh.model={model} = {chips} chips > accelerator.chips_per_host="
                f"{a.chips_per_host} of one {a.name} host" + (" (mesh.hosts=global spans the slice's hosts)"
                                                               if a.hosts > 1 else "")]
    indivisible = [f"model.{_SPLIT_SIZES[axis]}={getattr(cfg.model, _SPLIT_SIZES[axis])}" for axis in cfg.mesh.axes
                   if axis in _SPLIT_SIZES and getattr(cfg.model, _SPLIT_SIZES[axis]) % model]
    if indivisible:
        return [f"mesh.model={model}: {', '.join(indivisible)} not divisible by it (mesh.axes splits "
                f"{', '.join(a for a in cfg.mesh.axes if a in _SPLIT_SIZES)} over the model axis)"]
    if "vocab" in cfg.mesh.axes and cfg.model.checkpoint and cfg.model.vocab_size % model:
        return [f"mesh.model={model}: model.vocab_size={cfg.model.vocab_size} not divisible by it, and a checkpoint's "
                "vocabulary is read as saved, not padded (drop vocab from mesh.axes)"]
    return []


def memory_refusal(cfg: M9Config, memory: Optional[int], pages: int, prefill_size: int, lower_bound: bool
                   ) -> list[str]:
    """One chip's share of the weights and the KV cache at ``pages``, and the engine's state (on every chip),
    against one chip's memory, or nothing. The reason names the keys of its largest part."""
    e = cfg.engine
    kv, weights = kv_cache_bytes_per_chip(cfg, pages), weight_bytes_per_chip(cfg)
    state = state_bytes(cfg, prefill_size)
    if memory is None or kv + weights + state <= e.hbm_utilization * memory:
        return []
    at_least = "at least " if lower_bound else ""
    kv_parts = cfg.shards("kv_head")
    key = {state: f"engine.max_seqs={e.max_seqs} x engine.max_seq_len={e.max_seq_len}",
           weights: f"model.name={cfg.model.name}",
           kv: f"engine.max_pages={pages}" if e.max_pages is not None else
           f"engine.max_pages (unset: {pages} pages for {cfg.num_seqs} sequences)"}[max(state, weights, kv)]
    data, model = cfg.mesh_shape
    return [f"{key}: engine state {size(state)} ({e.max_seqs} slots x {e.max_seq_len} positions, prefill and logits) "
            f"+ KV cache {at_least}{size(kv)} ({at_least}{pages} pages x {e.page_size} tokens x "
            f"{kv_bytes_per_token(cfg) / 2**10:g} KiB/token" + (f" / {kv_parts} chips" if kv_parts > 1 else "")
            + f") + weights {size(weights)}" + (f" (of {size(weight_bytes(cfg))} over mesh.model={model})"
                                                  if weights < weight_bytes(cfg) else "")
            + f" > engine.hbm_utilization={e.hbm_utilization} x {memory / 2**30:.1f} GiB of one "
            f"{cfg.accelerator.name} chip (mesh {data}x{model})"]
