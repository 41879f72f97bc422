"""The point's device mesh: built from the devices this process really sees, and what the engine got on it, read
from the arrays (devices, mesh shape, one chip's bytes of weights and of the KV cache)."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import equinox as eqx
import haliax as hax
import jax
import numpy as np
from haliax.partitioning import ResourceAxis
from jax.sharding import Mesh

from m9.config import M9Config
from m9.protocol import Sharding


class MeshError(RuntimeError):
    """The mesh asked for is not what this process's devices can give."""


def device_mesh(cfg: M9Config) -> Mesh:
    """A (data, model) mesh over the first ``data x model`` of this process's devices or, with
    ``mesh.hosts=global``, over the same share of every process's devices, in process order (the model axis runs
    across processes when it is wider than a share). One line naming both when the devices cannot give it."""
    data, model = cfg.mesh_shape
    chips, local = data * model, jax.local_devices()
    if cfg.mesh.hosts == "global":
        count = jax.process_count()
        share = chips // count
        if chips % count or share > len(local):
            raise MeshError(f"mesh.hosts=global: mesh.data={data} x mesh.model={model} needs {chips} devices, the "
                            f"same share from each of {count} processes; this runtime has {jax.device_count()} "
                            f"({count} x {len(local)} {local[0].platform}: {local[0].device_kind})")
        by_process: dict[int, list] = {}
        for d in jax.devices():
            by_process.setdefault(d.process_index, []).append(d)
        devices = [d for p in sorted(by_process) for d in by_process[p][:share]]
    elif len(local) < chips:
        raise MeshError(f"mesh.data={data} x mesh.model={model} needs {chips} devices; this process sees "
                        f"{len(local)} ({local[0].platform}: {local[0].device_kind})")
    else:
        devices = local[:chips]
    return Mesh(np.array(devices).reshape(data, model), (ResourceAxis.DATA, ResourceAxis.MODEL))


def check_same_requests(digest: bytes) -> None:
    """A global mesh: every process must decode identical requests (the same prompts, pages, keys and config), or
    the jitted calls they make together diverge. Gathers every process's digest of its request and fails in one line
    naming the first rank whose digest is not rank 0's."""
    from jax.experimental import multihost_utils

    mine = np.frombuffer(digest, dtype=np.uint8)
    every = np.asarray(multihost_utils.process_allgather(mine)).reshape(jax.process_count(), mine.size)
    differ = [rank for rank in range(len(every)) if (every[rank] != every[0]).any()]
    if differ:
        raise MeshError(f"mesh.hosts=global: rank {differ[0]} was given another request than rank 0 (prompts, "
                        f"pages or config differ); every process of a global mesh must decode the same")


@contextlib.contextmanager
def on(mesh: Mesh, cfg: M9Config) -> Iterator[None]:
    """Everything in the block is placed on ``mesh`` with the point's axis mapping (build, prefill, decode)."""
    with hax.partitioning.set_mesh(mesh), hax.axis_mapping(cfg.mesh.mapping):
        yield


def _bytes(tree: Any, device: Any) -> tuple[int, int]:
    """(bytes of the tree's arrays on ``device``, bytes of the whole arrays)."""
    arrays = [x for x in jax.tree_util.tree_leaves(tree) if eqx.is_array(x)]
    on_device = sum(s.data.nbytes for x in arrays for s in x.addressable_shards if s.device == device)
    return on_device, sum(x.nbytes for x in arrays)


def measure(mesh: Mesh, model: Any, cache: Any) -> Sharding:
    """What the mesh holds, read from the arrays: this process's first device's part of the weights and of the KV
    cache (the mesh's devices all hold the same share)."""
    first = next(d for d in mesh.devices.flat if d.process_index == jax.process_index())
    weights, weights_whole = _bytes(model, first)
    kv, kv_whole = _bytes(cache, first)
    pages = next(x for x in jax.tree_util.tree_leaves(cache) if eqx.is_array(x))
    return Sharding(mesh=tuple(int(n) for n in mesh.devices.shape), devices=int(mesh.devices.size),
                    weight_bytes_per_chip=weights, weight_bytes=weights_whole, kv_cache_bytes_per_chip=kv,
                    kv_cache_bytes=kv_whole, kv_cache_spec=str(pages.sharding.spec))
