"""The planning edge: what the planner is given beside the config, read here (the chip's memory, the point's prompts
and stop sequences, the checkpoint's position limit) and handed to its arithmetic (``m9.plan.capacity``)."""

from __future__ import annotations

from typing import Optional

from m9.config import M9Config
from m9.inputs import checkpoint, device
from m9.inputs.prompts import Prompts
from m9.plan.capacity import Inputs, Plan, early_refusals, make_plan, too_big_to_build, unsized


def plan_point(cfg: M9Config, processes: Optional[int] = None, prompts: Optional[Prompts] = None) -> Plan:
    """Plan one point. The prompts are built (by ``prompts``, a process's cache, else afresh) unless there are too
    many to build, which the config alone tells. ``processes``: how many the point runs as, where it is about to run
    (a global mesh needs one per host)."""
    memory = device.memory_bytes(cfg.accelerator)
    too_big = too_big_to_build(cfg)
    if too_big:
        return unsized(cfg, early_refusals(cfg, memory, processes) or [too_big])
    built = (prompts or Prompts()).build(cfg)
    return make_plan(cfg, Inputs(built.lengths, len(built.stop_ids), memory,
                                 checkpoint.max_position_embeddings(cfg.model), processes))
