"""The memory of the chip a point decodes on, as the planner is given it: the accelerator preset's figure, else
this host's RAM when the engine decodes on the CPU, else unknown (the planner then checks no memory)."""

from __future__ import annotations

import functools
from typing import Optional

from m9.config import AcceleratorConfig


@functools.cache
def host_memory_bytes() -> Optional[int]:
    """Total RAM of this host (Linux), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def memory_bytes(accelerator: AcceleratorConfig) -> Optional[int]:
    """Memory of one chip: ``accelerator.memory_gib``, else on ``platform=cpu`` the host's RAM shared by its
    ``chips_per_host`` devices, else None."""
    if accelerator.memory_gib is not None:
        return int(accelerator.memory_gib * 2**30)
    if accelerator.platform == "cpu":
        ram = host_memory_bytes()
        return ram // accelerator.chips_per_host if ram is not None else None
    return None
