"""Launcher facts, in one place: which launcher runs a sweep's jobs (Hydra's basic one, joblib's parallel
one, submitit's SLURM one), how many of them run at once on this machine, and the CPU cores they share.
Read by the accelerator check (check_accelerator, here: a GPU job submitted to a cluster), the sweeper, the
jobs (torch threads), the study (its estimate) and the cost of a job; the launcher config is `hydra.launcher`
(conf/hydra/launcher)."""
from __future__ import annotations

import os
from typing import Mapping

from omegaconf import DictConfig

from mtlv.errors import ConfigError
from mtlv.options import config_value


def cores() -> int:
    """The CPU cores this process may run on (its affinity: a SLURM allocation or `taskset`, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _target(launcher) -> str:
    return str(launcher.get("_target_", "")) if launcher is not None else ""


def is_submitit(launcher) -> bool:
    """hydra/launcher=slurm|slurm_cpu (MTLV's, or submitit's own SLURM or local launcher): the jobs' count at a
    time is the queue's, not this machine's."""
    target = _target(launcher).lower()
    return "submitit" in target or "slurm" in target


def is_cluster(launcher) -> bool:
    """The jobs run on a cluster's nodes (submitit's SLURM launcher), not here: the node that submits them
    need not have their GPUs."""
    return is_submitit(launcher) and "LocalLauncher" not in _target(launcher)


def joblib_workers(launcher, cores: int) -> int | None:
    """The joblib launcher's number of parallel jobs (-1: all cores), or None under another launcher."""
    if launcher is None or "joblib" not in _target(launcher):
        return None
    n_jobs = int(launcher.get("n_jobs") or 1)
    return n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)


def default_threads(launcher, env: Mapping[str, str], cores: int) -> int | None:
    """torch_threads when unset: the CPUs SLURM gave the job, or the cores shared among the joblib
    launcher's parallel jobs (each torch would otherwise use every core); None: torch's default."""
    if str(env.get("SLURM_CPUS_PER_TASK", "")).isdigit():
        return int(env["SLURM_CPUS_PER_TASK"])
    workers = joblib_workers(launcher, cores)
    return max(1, cores // workers) if workers else None


def submitted_to_cluster(cfg: DictConfig) -> bool:
    """A sweep whose jobs the launcher submits to a cluster (hydra/launcher=slurm: submitit): they run on
    its nodes, and each job checks the node's GPUs there (run_job). The login node that submits them
    usually has none, so the sweeper must not refuse `trainer=gpu` for it."""
    launcher = config_value(cfg, "hydra.launcher")
    return str(config_value(cfg, "hydra.mode")).endswith("MULTIRUN") and is_cluster(
        launcher if isinstance(launcher, DictConfig) else None)


def check_accelerator(cfg: DictConfig) -> None:
    """trainer.accelerator=gpu|cuda needs a CUDA GPU here, unless the jobs run on a cluster's nodes."""
    accelerator = str(config_value(cfg, "trainer.accelerator"))
    if accelerator in ("gpu", "cuda") and not submitted_to_cluster(cfg):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"trainer.accelerator={accelerator} (trainer=gpu, trainer=ddp) needs CUDA, and no CUDA "
                              "GPU is available here: use trainer=cpu or trainer=default (it picks what there is), "
                              "or run where CUDA is available")
