"""m9's submitit launchers, registered in Hydra's ConfigStore as ``hydra/launcher=m9_submitit_local|m9_submitit_slurm``
(the ``local`` and ``slurm`` profiles in ``launchers/`` build on them). Same settings as hydra-submitit-launcher's."""

# No ``from __future__ import annotations``: Hydra executes plugin modules outside sys.modules, where dataclasses
# cannot resolve string annotations.
from dataclasses import dataclass
from typing import List, Optional

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf


@dataclass
class M9LocalQueueConf(LocalQueueConf):
    _target_: str = "hydra_plugins.m9_launchers.m9_launchers.M9LocalLauncher"


@dataclass
class M9SlurmQueueConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.m9_launchers.m9_launchers.M9SlurmLauncher"
    srun_args: Optional[List[str]] = None
    """Extra ``srun`` arguments (submitit's ``srun_args``). A multi-task point always gets
    ``--kill-on-bad-exit=1``: a dead process ends the step instead of leaving its peers waiting."""


ConfigStore.instance().store(group="hydra/launcher", name="m9_submitit_local", node=M9LocalQueueConf(),
                             provider="m9_launchers")
ConfigStore.instance().store(group="hydra/launcher", name="m9_submitit_slurm", node=M9SlurmQueueConf(),
                             provider="m9_launchers")
