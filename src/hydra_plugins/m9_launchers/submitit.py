"""m9's submitit launchers, ``hydra/launcher=m9_submitit_local|m9_submitit_slurm`` (the ``local`` and ``slurm``
profiles in ``launchers/`` build on them): hydra-submitit-launcher's, with the same settings, except that

- every job comes back: one that ends without a result (killed from outside, past its time limit, its node lost)
  is returned as a ``LostJob`` for the sweep to record as a failed point, instead of aborting the multirun (the
  collecting is in ``_submitit``, imported when a sweep launches, not when Hydra scans its plugins);
- each says where its points run (``placement``: the device a point key names), and, inside a job, which of the
  point's processes this is (``process``: a SLURM step's task).
"""

# No ``from __future__ import annotations``: Hydra executes plugin modules outside sys.modules, where dataclasses
# cannot resolve string annotations.
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher


@dataclass
class M9LocalQueueConf(LocalQueueConf):
    _target_: str = "hydra_plugins.m9_launchers.submitit.M9LocalLauncher"


@dataclass
class M9SlurmQueueConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.m9_launchers.submitit.M9SlurmLauncher"
    srun_args: Optional[List[str]] = None
    """Extra ``srun`` arguments (submitit's ``srun_args``). A multi-task point always gets
    ``--kill-on-bad-exit=1``: a dead process ends the step instead of leaving its peers waiting."""


ConfigStore.instance().store(group="hydra/launcher", name="m9_submitit_local", node=M9LocalQueueConf(),
                             provider="m9_launchers")
ConfigStore.instance().store(group="hydra/launcher", name="m9_submitit_slurm", node=M9SlurmQueueConf(),
                             provider="m9_launchers")

_HARDWARE_FIELDS = ("partition", "constraint", "gpus_per_node", "gres", "nodes", "tasks_per_node", "qos")
"""The settings that choose the hardware a SLURM job gets."""


class M9LocalLauncher(LocalLauncher):
    """submitit on this host: a process per point, all at once."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hydra_plugins.m9_launchers._submitit import launch

        return launch(self, job_overrides, initial_job_idx)

    def placement(self):
        from m9.record.provenance import local_device_kind
        from m9.sweep.launched import Placement

        return Placement(device=local_device_kind())

    @staticmethod
    def process() -> Tuple[int, int]:
        """(this process's rank, the point's processes): one process per point."""
        return 0, 1


class M9SlurmLauncher(SlurmLauncher):
    """One SLURM job per point (a task per host for a point of several processes)."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hydra_plugins.m9_launchers._submitit import launch

        return launch(self, job_overrides, initial_job_idx)

    def placement(self):
        """The cluster settings that choose the hardware: the launching host knows no more of it."""
        from m9.sweep.launched import Placement

        fields = {k: self.params.get(k) for k in _HARDWARE_FIELDS if self.params.get(k) is not None}
        processes = (self.params.get("nodes") or 1) * (self.params.get("tasks_per_node") or 1)
        return Placement(device=f"slurm:{sorted(fields.items())}", processes=processes)

    @staticmethod
    def process() -> Tuple[int, int]:
        """(this process's rank, the point's processes): the SLURM step's task id and task count, or (0, 1)
        outside a step of several tasks."""
        count = int(os.environ.get("SLURM_STEP_NUM_TASKS") or os.environ.get("SLURM_NTASKS") or 1)
        if count <= 1 or "SLURM_STEP_ID" not in os.environ:
            return 0, 1
        return int(os.environ.get("SLURM_PROCID", 0)), count
