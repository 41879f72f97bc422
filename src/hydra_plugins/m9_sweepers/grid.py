"""``hydra/sweeper=m9`` (the default): a grid, every combination of the swept values, each point composed and
checked before any launches."""

# No ``from __future__ import annotations``: Hydra executes plugin modules outside sys.modules, where dataclasses
# cannot resolve string annotations.
from dataclasses import dataclass
from typing import Any, Dict, Optional

from hydra_plugins.m9_sweepers._base import M9Sweeper, register


@dataclass
class GridSweeperConf:
    """A grid: one point per combination of the swept values, every point composed and checked first."""

    _target_: str = "hydra_plugins.m9_sweepers.grid.GridSweeper"
    max_batch_size: Optional[int] = None
    """Points handed to the launcher at once (None: all of them)."""
    resume: bool = True
    """Reuse points an earlier sweep already measured (same config, code, engine and device): run only what is
    missing. False measures every point again."""
    params: Optional[Dict[str, str]] = None
    """A preset's own grid (``key: values``); the command line wins over it."""


register("m9", GridSweeperConf)


class GridSweeper(M9Sweeper):
    """Every combination of the swept values."""

    def __init__(self, max_batch_size: Optional[int] = None, resume: bool = True,
                 params: Optional[Dict[str, Any]] = None):
        super().__init__(resume, params)
        self.max_batch_size = max_batch_size

    def search(self, driver: Any, arguments: list) -> None:
        from m9.sweep.grid.mode import run

        run(driver, arguments, self.params, self.max_batch_size)
