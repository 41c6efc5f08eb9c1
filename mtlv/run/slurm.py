"""`hydra/launcher=slurm`: Hydra's submitit launcher with two changes for clusters as they are
(the launcher class is hydra_plugins/mtlv_sweeper/mtlv_slurm_launcher.py; Hydra wants it there).

* Job states come from `sacct`, which needs SLURM accounting. Where accounting is off, submitit
  warns "Bypassing sacct error" at every poll and never notices a job that died without a result
  (scancel, node failure, out of memory): the sweep waits forever. `QueueWatcher` asks `squeue`
  instead once sacct has failed (one log line); a job that left the queue without a result is over.
* Hydra's launcher returns at the first job without a result and leaves the others unwaited. Here
  every job is waited for, and a lost one becomes a failed job: MTLV's sweeper lists it and
  aggregates nothing incomplete, and rerunning the same command runs only the unfinished groups.
"""
from __future__ import annotations

import logging
import subprocess
import time
from typing import Sequence

from hydra.core.utils import JobReturn, JobStatus
from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

log = logging.getLogger(__name__)

# squeue lists a job while it is pending, running, requeued or completing; not once it has ended.
_LIVE = {"READY", "PENDING", "RUNNING", "UNKNOWN", "REQUEUED", "COMPLETING", "PREEMPTED"}


class QueueWatcher(SlurmInfoWatcher):
    """submitit's sacct watcher, falling back to squeue where accounting is off."""

    def __init__(self, delay_s: int = 600) -> None:
        super().__init__(delay_s)
        self._sacct = True

    def update(self) -> None:
        command = self._make_command()
        if command is None:
            return
        self._num_calls += 1
        if self._sacct:
            proc = subprocess.run(command, capture_output=True, text=True)
            if proc.returncode == 0:
                self._info_dict.update(self.read_info(proc.stdout))
            else:
                self._sacct = False
                self._delay_s = min(self._delay_s, 60)  # squeue is cheap: notice a dead job within a minute
                reason = " ".join((proc.stderr or proc.stdout).split())[:120]
                log.info("sacct unavailable (%s): following the jobs with squeue", reason)
        if not self._sacct:
            self._info_dict.update(self._from_squeue())
        self._last_status_check = time.time()
        for job_id in self._registered - self._finished:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)

    def _from_squeue(self) -> dict[str, dict[str, str]]:
        proc = subprocess.run(["squeue", "--me", "-h", "-r", "-o", "%i|%T"], capture_output=True, text=True)
        if proc.returncode != 0:  # controller unreachable: keep the last known states
            return {}
        queued = dict(line.split("|", 1) for line in proc.stdout.split() if "|" in line)
        return {job: {"JobID": job, "State": queued[job] if queued.get(job) in _LIVE else
                      ("RUNNING" if job in queued else "FINISHED")}
                for job in self._registered - self._finished}


SlurmJob.watcher = QueueWatcher()  # a class attribute: submitit makes array tasks plain SlurmJobs


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
    """Hydra's SlurmLauncher.launch (hydra-submitit-launcher 1.2), except that it waits for every job."""
    import submitit
    from hydra.core.singleton import Singleton
    from hydra.core.utils import filter_overrides
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    params = launcher.params
    executor = submitit.AutoExecutor(cluster="slurm", folder=params["submitit_folder"],
                                     slurm_max_num_timeout=params["max_num_timeout"])
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()
                                  if k not in ("submitit_folder", "max_num_timeout")})
    log.info("Submitit 'slurm' sweep output dir : %s", launcher.config.hydra.sweep.dir)
    job_params = []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
    try:
        jobs = executor.map_array(launcher, *zip(*job_params))
    except (submitit.core.utils.FailedJobError, OSError) as err:  # sbatch refused, or is not there
        from mtlv.errors import SubmissionError

        said = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise SubmissionError(
            f"hydra/launcher=slurm: sbatch did not queue the {len(job_params)} job(s) "
            f"({said[-1] if said else type(err).__name__}); check that SLURM answers here (`sinfo`) and the "
            "launcher's options (hydra.launcher.partition=..., hydra.launcher.account=...); "
            "finished jobs are kept: rerun the same command") from None
    return [_result(job, list(overrides)) for job, overrides in zip(jobs, job_overrides)]


def _result(job, overrides: list[str]) -> JobReturn:
    try:
        return job.results()[0]
    except Exception as err:  # the job ended without a result: cancelled, killed, out of time/memory
        lines = str(err).splitlines() or [type(err).__name__]
        detail = lines[1 if len(lines) > 1 else 0].strip()  # submitit: "has not produced any output (state: X)"
        lost = RuntimeError(f"SLURM job {job.job_id} ended without a result ({detail}); its log: {job.paths.stderr}")
        return JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=lost)
