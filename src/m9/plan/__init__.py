"""Planning: what a point will need and produce, and whether it can run, by arithmetic over its config and what it
is given (``capacity``: pages, prefill, decode budget; ``chips``: the mesh and one chip's memory; ``sizes``: bytes).
No JAX and no file: the edge that reads the chip's memory and builds the prompts is ``m9.plan.edge``."""

from m9.plan.capacity import (
    BUILDABLE_PROMPTS,
    BUILDABLE_TOKENS,
    Inputs,
    Plan,
    decode_budget,
    describe,
    early_refusals,
    make_plan,
    too_big_to_build,
    unsized,
)

__all__ = ["BUILDABLE_PROMPTS", "BUILDABLE_TOKENS", "Inputs", "Plan", "decode_budget", "describe", "early_refusals",
           "make_plan", "too_big_to_build", "unsized"]
