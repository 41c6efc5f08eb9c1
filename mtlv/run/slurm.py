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

from mtlv.errors import SubmissionError

log = logging.getLogger(__name__)

# squeue lists a job while it is pending, running, requeued or completing; not once it has ended.
_LIVE = {"READY", "PENDING", "RUNNING", "UNKNOWN", "REQUEUED", "COMPLETING", "PREEMPTED"}

# Why a job waits (squeue's %r) when the wait cannot end: the job asks for more than the partition or a per-job
# limit allows, so no amount of waiting starts it (SLURM keeps it PENDING forever). Each names the launcher options
# to lower. Reasons that clear by themselves (Priority, Resources, a group limit while other jobs run, a node
# that is down) are only shown.
_CPU, _MEM, _TIME = "hydra.launcher.cpus_per_task", "hydra.launcher.mem_gb", "hydra.launcher.timeout_min"
_NODES, _GPUS = "hydra.launcher.nodes", "hydra.launcher.gpus_per_node"
NEVER_STARTS = {
    "PartitionConfig": ("asks for more than its partition has or allows (CPUs, memory, GPUs or nodes; `sinfo -o "
                        "'%P %c %m %G %D'` shows them)", f"{_CPU}, {_MEM}, {_GPUS} or {_NODES}"),
    "PartitionNodeLimit": ("asks for more nodes than its partition allows", _NODES),
    "PartitionTimeLimit": ("asks for a longer time than its partition allows (`sinfo -o '%P %l'`)", _TIME),
    "BadConstraints": ("asks for features no node has", "hydra.launcher.constraint"),
    "InvalidQOS": ("names a QOS it may not use", "hydra.launcher.qos"),
    "InvalidAccount": ("names an account it may not use", "hydra.launcher.account"),
}
# per-job limits of an association or QOS (e.g. QOSMaxCpuPerJobLimit, AssocMaxWallDurationPerJobLimit): the
# resource named in the reason, and the option that asks for it
_PER_JOB = (("Cpu", _CPU), ("Mem", _MEM), ("Wall", _TIME), ("Node", _NODES), ("Gres", _GPUS), ("GRES", _GPUS))


def never_starts(reason: str, nodes: set[str] | None = None, cpus: int | None = None,
                 cpu_limit: int | None = None, node_cpus: int | None = None) -> str | None:
    """Why a job pending for `reason` can never start, naming what to lower; None if the wait may end.

    `nodes`: the cluster's node names (sinfo), for ReqNodeNotAvail: waiting for a node that exists is waiting for
    it to come back; for one that does not, forever. `cpus`, `cpu_limit`: the job's CPUs and its association's
    group CPU limit, for AssocGrpCpuLimit: above the limit the job cannot start even once the others end.
    `node_cpus`: the most CPUs a node of the job's partition has, to name CPUs as the resource of PartitionConfig."""
    code = reason.split(",", 1)[0].strip()
    if code == "PartitionConfig" and cpus is not None and node_cpus is not None and cpus > node_cpus:
        return (f"PartitionConfig: it asks for {cpus} CPUs and the nodes of its partition have {node_cpus}; lower "
                f"{_CPU} to {node_cpus} or fewer")
    if code in NEVER_STARTS:
        what, options = NEVER_STARTS[code]
        return f"{code}: it {what}; lower {options}"
    if code.endswith("PerJobLimit") or code.endswith("PerJob"):
        option = next((opt for word, opt in _PER_JOB if word in code), "the launcher's resources")
        return f"{code}: it asks for more than one job may have; lower {option}"
    if code == "ReqNodeNotAvail" and nodes is not None:
        wanted = [n.strip() for n in reason.split("UnavailableNodes:", 1)[1].split(",")] \
            if "UnavailableNodes:" in reason else []
        missing = [n for n in wanted if n and n not in nodes]
        if missing and not any("[" in n for n in wanted):  # a host range (n[1-3]) is not a name to look up
            return (f"ReqNodeNotAvail: it asks for node {', '.join(missing)}, which this cluster does not have "
                    f"({', '.join(sorted(nodes))}); remove it from hydra.launcher.nodelist")
    if code == "AssocGrpCpuLimit" and cpus is not None and cpu_limit is not None and cpus > cpu_limit:
        return (f"AssocGrpCpuLimit: it asks for {cpus} CPUs and its account may use {cpu_limit} at once; lower "
                f"{_CPU} (or {_NODES}) to fit")
    return None


class UnschedulableError(SubmissionError):
    """SLURM queued a job that it can never start (its queue reason says what to lower)."""


class QueueWatcher(SlurmInfoWatcher):
    """submitit's sacct watcher, falling back to squeue where accounting is off. It also reads why pending jobs
    wait (squeue's reason), says so when that changes, and raises UnschedulableError for a job that can never
    start (never_starts), instead of waiting for it forever."""

    def __init__(self, delay_s: int = 600) -> None:
        super().__init__(delay_s)
        self._sacct = True
        self.reasons: dict[str, str] = {}       # pending job -> why it waits
        self._cpus: dict[str, int] = {}
        self._partition: dict[str, str] = {}
        self._said: dict[str, str] = {}

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
        elif self._pending():  # sacct has no reason: ask squeue why they wait
            self._from_squeue()
        self._last_status_check = time.time()
        for job_id in self._registered - self._finished:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)
        self._judge_waiting()

    def _pending(self) -> list[str]:
        return sorted(j for j in self._registered - self._finished
                      if self._info_dict.get(j, {}).get("State") == "PENDING")

    def _from_squeue(self) -> dict[str, dict[str, str]]:
        """The registered jobs' states from squeue (a job no longer listed has ended); records why pending ones
        wait and their CPUs."""
        proc = subprocess.run(["squeue", "--me", "-h", "-r", "-o", "%i|%T|%C|%P|%r"], capture_output=True,
                              text=True)
        if proc.returncode != 0:  # controller unreachable: keep the last known states
            return {}
        queued: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            fields = line.strip().split("|", 4)
            if len(fields) < 2:
                continue
            queued[fields[0]] = fields[1]
            if len(fields) == 5 and fields[1] == "PENDING":
                self.reasons[fields[0]] = fields[4].strip()
                self._partition[fields[0]] = fields[3].strip()
                if fields[2].strip().isdigit():
                    self._cpus[fields[0]] = int(fields[2])
            else:
                self.reasons.pop(fields[0], None)
        for job in list(self.reasons):
            if job not in queued:
                self.reasons.pop(job)
        return {job: {"JobID": job, "State": queued[job] if queued.get(job) in _LIVE else
                      ("RUNNING" if job in queued else "FINISHED")}
                for job in self._registered - self._finished}

    def waiting(self) -> str:
        """'2 jobs waiting in the SLURM queue (Priority: 41_0, 41_1)', '' when none waits."""
        mine = {j: r for j, r in self.reasons.items() if j in self._registered - self._finished}
        if not mine:
            return ""
        by_reason: dict[str, list[str]] = {}
        for job, reason in sorted(mine.items()):
            by_reason.setdefault(reason or "no reason given", []).append(job)
        parts = [f"{reason}: {', '.join(jobs[:3])}{f' +{len(jobs) - 3}' if len(jobs) > 3 else ''}"
                 for reason, jobs in by_reason.items()]
        return f"{len(mine)} job(s) waiting in the SLURM queue ({'; '.join(parts)})"

    def _judge_waiting(self) -> None:
        """Say when why the jobs wait changes (the sweep's log, and a study's status line via MTLV_QUEUE_STATUS);
        raise UnschedulableError for a job that can never start."""
        mine = {j: r for j, r in self.reasons.items() if j in self._registered - self._finished}
        if mine != self._said:
            self._said = dict(mine)
            if text := self.waiting():
                log.info("%s", text)
            _write_status(self.waiting())
        nodes = cpu_limit = None
        for job, reason in sorted(mine.items()):
            if reason.startswith("ReqNodeNotAvail") and nodes is None:
                nodes = _cluster_nodes()
            if reason.startswith("AssocGrpCpuLimit") and cpu_limit is None:
                cpu_limit = _group_cpu_limit()
            node_cpus = _partition_cpus(self._partition.get(job)) if reason.startswith("PartitionConfig") else None
            why = never_starts(reason, nodes, self._cpus.get(job), cpu_limit, node_cpus)
            if why is not None:
                raise UnschedulableError(
                    f"hydra/launcher=slurm: SLURM can never start job {job} ({why}); the sweep's jobs are "
                    "cancelled, finished ones are kept: rerun the same command with the lower value")


def _write_status(text: str) -> None:
    """The queue line for a study's status line: the study names the file in MTLV_QUEUE_STATUS (empty: none
    waits)."""
    import os

    path = os.environ.get("MTLV_QUEUE_STATUS")
    if path:
        from mtlv.io import write_text

        try:
            write_text(path, text)
        except OSError:  # a status line is not worth failing the sweep for
            pass


def _cluster_nodes() -> set[str] | None:
    proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True)
    return {n.strip() for n in proc.stdout.split()} if proc.returncode == 0 and proc.stdout.strip() else None


def _partition_cpus(partition: str | None) -> int | None:
    """The most CPUs one node of `partition` has (sinfo); None if unknown."""
    if not partition:
        return None
    proc = subprocess.run(["sinfo", "-h", "-p", partition.rstrip("*"), "-o", "%c"], capture_output=True, text=True)
    counts = [int(c.rstrip("+")) for c in proc.stdout.split() if c.rstrip("+").isdigit()] if proc.returncode == 0 else []
    return max(counts) if counts else None


def _group_cpu_limit() -> int | None:
    """The smallest group CPU limit (GrpTRES cpu=N) of this user's associations and their accounts; None if
    sacctmgr does not answer or sets none."""
    import getpass

    proc = subprocess.run(["sacctmgr", "-nP", "show", "assoc", "format=Account,User,GrpTRES"], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        return None
    rows = [line.split("|") for line in proc.stdout.splitlines() if line.count("|") >= 2]
    user = getpass.getuser()
    accounts = {r[0] for r in rows if r[1] == user}
    limits = [int(part[4:]) for account, who, tres, *_ in rows if account in accounts and who in (user, "")
              for part in tres.split(",") if part.startswith("cpu=") and part[4:].isdigit()]
    return min(limits) if limits else None


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
        said = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise SubmissionError(
            f"hydra/launcher=slurm: sbatch did not queue the {len(job_params)} job(s) "
            f"({said[-1] if said else type(err).__name__}); check that SLURM answers here (`sinfo`) and the "
            "launcher's options (hydra.launcher.partition=..., hydra.launcher.account=...); "
            "finished jobs are kept: rerun the same command") from None
    try:
        return [_result(job, list(overrides)) for job, overrides in zip(jobs, job_overrides)]
    except UnschedulableError:
        for job in jobs:  # the others ask for the same resources: cancel them all, keep nothing pending
            job.cancel(check=False)
        raise
    finally:
        _write_status("")


def _result(job, overrides: list[str]) -> JobReturn:
    try:
        return job.results()[0]
    except UnschedulableError:  # not this job's failure: the sweep's (launch)
        raise
    except Exception as err:  # the job ended without a result: cancelled, killed, out of time/memory
        lines = str(err).splitlines() or [type(err).__name__]
        detail = lines[1 if len(lines) > 1 else 0].strip()  # submitit: "has not produced any output (state: X)"
        lost = RuntimeError(f"SLURM job {job.job_id} ended without a result ({detail}); its log: {job.paths.stderr}")
        return JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=lost)
