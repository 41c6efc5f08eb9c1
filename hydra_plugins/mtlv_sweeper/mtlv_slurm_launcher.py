"""`hydra/launcher=slurm`: Hydra's submitit SLURM launcher, waiting for every job and following
them with squeue where accounting is off (see mtlv/run/slurm.py)."""
from __future__ import annotations

from typing import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher


class MTLVSlurmLauncher(SlurmLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from mtlv.run.slurm import launch  # submitit is imported only when a sweep is launched

        return launch(self, job_overrides, initial_job_idx)
