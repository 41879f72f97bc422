"""The sweepers' settings (``hydra.sweeper.*``), registered in Hydra's ConfigStore as
``hydra/sweeper=m9|boundary|optimize``."""

# No ``from __future__ import annotations``: Hydra executes plugin modules outside sys.modules, where dataclasses
# cannot resolve string annotations.
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class GridSweeperConf:
    """A grid: one point per combination of the swept values, every point composed and checked first."""

    _target_: str = "hydra_plugins.m9_sweepers.m9_sweepers.GridSweeper"
    max_batch_size: Optional[int] = None
    """Points handed to the launcher at once (None: all of them)."""
    resume: bool = True
    """Reuse points an earlier sweep already measured (same config, code, engine and device): run only what is
    missing. False measures every point again."""
    params: Optional[Dict[str, str]] = None
    """A preset's own grid (``key: values``); the command line wins over it."""


@dataclass
class BoundarySweeperConf:
    """A search for the largest stable value of ``knob`` in ``low..high``: planner first, then real trials."""

    _target_: str = "hydra_plugins.m9_sweepers.m9_sweepers.BoundarySweeper"
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
    """Values probed per round. None: 1 with Hydra's basic launcher (points one after another), else 4."""
    resume: bool = True
    """Reuse points an earlier sweep already measured, as evidence; False measures every probe again."""
    params: Optional[Dict[str, Any]] = None
    """Other swept keys (a preset's grid): each combination gets its own search (a frontier)."""


@dataclass
class OptimizeSweeperConf:
    """The fastest configuration of a space (Hydra's sweep syntax: ``choice(...)``, ``range(...)``,
    ``interval(...)``), found by Optuna's ask/tell with the planner's refusals and failures as constraints."""

    _target_: str = "hydra_plugins.m9_sweepers.m9_sweepers.OptimizeSweeper"
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
    """Configurations proposed at once. None: 1 with Hydra's basic launcher, else 4."""
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


SWEEPERS = {"m9": GridSweeperConf, "boundary": BoundarySweeperConf, "optimize": OptimizeSweeperConf}
"""m9's sweepers by their ``hydra/sweeper`` option."""

for _name, _node in SWEEPERS.items():
    ConfigStore.instance().store(group="hydra/sweeper", name=_name, node=_node, provider="m9")


def owner_hint(key: str, current: str) -> Optional[str]:
    """For a setting ``hydra.sweeper.KEY`` that ``hydra/sweeper=CURRENT`` lacks and another of m9's sweepers has:
    the line naming that sweeper and how to choose it; None otherwise."""
    settings = {name: {f.name for f in fields(conf)} for name, conf in SWEEPERS.items()}
    owners = [name for name, keys in settings.items() if key in keys]
    if current not in settings or key in settings[current] or not owners:
        return None
    return (f"hydra.sweeper.{key}: a setting of hydra/sweeper={owners[0]}, not of hydra/sweeper={current} "
            f"(this command's sweeper); add hydra/sweeper={owners[0]} to the command line")
