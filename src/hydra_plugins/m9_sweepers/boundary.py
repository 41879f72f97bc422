"""``hydra/sweeper=boundary``: the largest stable value of one knob, planner first, then real trials."""

# No ``from __future__ import annotations``: Hydra executes plugin modules outside sys.modules, where dataclasses
# cannot resolve string annotations.
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra_plugins.m9_sweepers._base import M9Sweeper, as_list, register


@dataclass
class BoundarySweeperConf:
    """A search for the largest stable value of ``knob`` in ``low..high``: planner first, then real trials."""

    _target_: str = "hydra_plugins.m9_sweepers.boundary.BoundarySweeper"
    knob: str = "engine.max_seqs"
    """The integer config key to search."""
    low: int = 1
    """The known-good end of the range."""
    high: int = 256
    """The top of the range."""
    confirm: int = 2
    """Agreeing trials that confirm the ceiling and a first failure that is not deterministic."""
    sla: List[str] = field(default_factory=list)
    """Conditions a pass must also meet to count as stable, ANDed: ``[round_avg_tok_s:ge:2000,iter_s_p90:le:0.05]``
    (or quoted, ``'round_avg_tok_s>=2000'``)."""
    max_trials: Optional[int] = None
    """Stop each search after this many trials, answer unconfirmed (None: as many as the search needs)."""
    batch: Optional[int] = None
    """Values probed per round. None: the launcher's width (1 with Hydra's basic launcher, which runs points one
    after another; 4 for launchers that run them at once)."""
    resume: bool = True
    """Reuse points an earlier sweep already measured, as evidence; False measures every probe again."""
    params: Optional[Dict[str, Any]] = None
    """Other swept keys (a preset's grid): each combination gets its own search (a frontier)."""


register("boundary", BoundarySweeperConf)


class BoundarySweeper(M9Sweeper):
    """The largest stable value of one knob."""

    def __init__(self, knob: str = "engine.max_seqs", low: int = 1, high: int = 256, confirm: int = 2,
                 sla: Any = (), max_trials: Optional[int] = None, batch: Optional[int] = None, resume: bool = True,
                 params: Optional[Dict[str, Any]] = None):
        super().__init__(resume, params)
        self.settings = dict(knob=knob, low=low, high=high, confirm=confirm, max_trials=max_trials, batch=batch,
                             sla=as_list(sla))

    def search(self, driver: Any, arguments: list) -> Any:
        from m9.sweep.boundary.mode import check_spec, run

        batch = self.settings["batch"]
        settings = {**self.settings, "batch": driver.placement.parallel if batch is None else batch}
        return run(driver, check_spec(**settings), arguments, self.params)
