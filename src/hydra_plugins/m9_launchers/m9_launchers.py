"""The launcher classes Hydra instantiates: hydra-submitit-launcher's, except that every job comes back. A job
that ends without a result (killed from outside, past its time limit, its node lost) is returned as a
``m9.sweep.jobs.LostJob`` for the sweeper to record as a failed point, instead of aborting the multirun. The work
is in ``m9.sweep.jobs`` (imported when a sweep launches, not when Hydra scans its plugins)."""

from __future__ import annotations

from typing import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
    LocalLauncher,
    SlurmLauncher,
)

from hydra_plugins.m9_launchers import config as _config  # noqa: F401 - registers hydra/launcher=m9_submitit_*


class M9LocalLauncher(LocalLauncher):
    """submitit on this host."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from m9.sweep.jobs import launch

        return launch(self, job_overrides, initial_job_idx)


class M9SlurmLauncher(SlurmLauncher):
    """One SLURM job per point."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from m9.sweep.jobs import launch

        return launch(self, job_overrides, initial_job_idx)
