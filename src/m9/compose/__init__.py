"""Compose: every point of a command line composed with Hydra's own machinery and checked before anything launches.

    schema    the schema's door into Hydra: ``M9Config`` in the ConfigStore, a composed config as the frozen schema
    composer  one point: composed as Hydra's launchers compose a job, converted, checked (``BadInput``: one line)
    command   the command line: Hydra's argument parser, its ``BasicSweeper``'s expansion, every point checked
"""

from m9.compose.command import (
    MAX_POINTS,
    check,
    check_sweeper_settings,
    expand,
    expand_overrides,
    is_multirun,
    key_of,
)
from m9.compose.composer import BadInput, Composer, check_point, compose_point, one_line
from m9.compose.schema import flat_params, from_hydra, register_schema

__all__ = ["MAX_POINTS", "BadInput", "Composer", "check", "check_point", "check_sweeper_settings", "compose_point",
           "expand", "expand_overrides", "flat_params", "from_hydra", "is_multirun", "key_of", "one_line",
           "register_schema"]
