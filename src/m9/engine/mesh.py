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
from m9.run.protocol import Sharding


class MeshError(RuntimeError):
    """The mesh asked for is not what this process's devices can give."""


def device_mesh(cfg: M9Config) -> Mesh:
    """A (data, model) mesh over the first ``data x model`` of this process's devices; one line naming both when
    the process sees fewer."""
    data, model = cfg.mesh_shape
    devices = jax.local_devices()
    if len(devices) < data * model:
        raise MeshError(f"mesh.data={data} x mesh.model={model} needs {data * model} devices; this process sees "
                        f"{len(devices)} ({devices[0].platform}: {devices[0].device_kind})")
    return Mesh(np.array(devices[: data * model]).reshape(data, model), (ResourceAxis.DATA, ResourceAxis.MODEL))


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
    """What the mesh holds, read from the arrays: the first device's part of the weights and of the KV cache."""
    first = mesh.devices.flat[0]
    weights, weights_whole = _bytes(model, first)
    kv, kv_whole = _bytes(cache, first)
    pages = next(x for x in jax.tree_util.tree_leaves(cache) if eqx.is_array(x))
    return Sharding(mesh=tuple(int(n) for n in mesh.devices.shape), devices=int(mesh.devices.size),
                    weight_bytes_per_chip=weights, weight_bytes=weights_whole, kv_cache_bytes_per_chip=kv,
                    kv_cache_bytes=kv_whole, kv_cache_spec=str(pages.sharding.spec))
