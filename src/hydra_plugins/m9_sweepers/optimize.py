"""``hydra/sweeper=optimize``: the fastest configuration of a space of knobs (Hydra's sweep syntax), found by Optuna's
ask/tell with the planner's refusals and failures as constraints."""

# No ``from __future__ import annotations``: Hydra executes plugin modules outside sys.modules, where dataclasses
# cannot resolve string annotations.
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra_plugins.m9_sweepers._base import M9Sweeper, as_list, register


@dataclass
class OptimizeSweeperConf:
    """The fastest configuration of a space (Hydra's sweep syntax: ``choice(...)``, ``range(...)``,
    ``interval(...)``), found by Optuna's ask/tell with the planner's refusals and failures as constraints."""

    _target_: str = "hydra_plugins.m9_sweepers.optimize.OptimizeSweeper"
    objective: str = "round_avg_tok_s"
    """The recorded metric to optimise."""
    direction: str = "maximize"
    """maximize or minimize."""
    sampler: str = "tpe"
    """tpe (Optuna's TPE, the default), gp (Gaussian process; needs torch: m9[gp]) or random."""
    seed: int = 0
    trials: int = 30
    """Measurements before confirmation (run now or found in the store); planner refusals cost nothing."""
    batch: Optional[int] = None
    """Configurations proposed at once. None: the launcher's width (1 with Hydra's basic launcher, else 4)."""
    confirm: int = 3
    """Best candidates measured again (0: trust single measurements)."""
    repeats: int = 3
    """Measurements of each candidate, the first included; the answer is the best median."""
    sla: List[str] = field(default_factory=list)
    """Conditions a pass must meet to be feasible, as the boundary search takes them (``per_seq_tok_s:ge:20``)."""
    resume: bool = True
    """Reuse points an earlier sweep measured (same config, code, engine and device): a killed optimisation goes on
    where it stopped, a grid run earlier seeds the study."""
    params: Optional[Dict[str, Any]] = None
    """A preset's space and fixed keys (``key: choice(...)``); the command line wins over it."""


register("optimize", OptimizeSweeperConf)


class OptimizeSweeper(M9Sweeper):
    """The fastest configuration of a space of knobs."""

    def __init__(self, objective: str = "round_avg_tok_s", direction: str = "maximize", sampler: str = "tpe",
                 seed: int = 0, trials: int = 30, batch: Optional[int] = None, confirm: int = 3, repeats: int = 3,
                 sla: Any = (), resume: bool = True, params: Optional[Dict[str, Any]] = None):
        super().__init__(resume, params)
        self.settings = dict(objective=objective, direction=direction, sampler=sampler, seed=seed, trials=trials,
                             batch=batch, confirm=confirm, repeats=repeats, sla=as_list(sla))

    def search(self, driver: Any, arguments: list) -> Any:
        from m9.sweep.optimize.mode import check_spec, run

        batch = self.settings["batch"]
        settings = {**self.settings, "batch": driver.placement.parallel if batch is None else batch}
        return run(driver, check_spec(**settings), arguments, self.params)
