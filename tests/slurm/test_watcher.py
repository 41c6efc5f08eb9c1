"""MTLV's SLURM job watcher without a cluster: sacct and squeue replaced by recorded answers."""
from __future__ import annotations

import logging
import subprocess

import pytest

from mtlv.run.slurm import QueueWatcher, UnschedulableError, never_starts

NO_ACCOUNTING = subprocess.CompletedProcess([], 1, "", "Slurm accounting storage is disabled\n")


def fake_slurm(monkeypatch, answers: dict[str, list[subprocess.CompletedProcess]]) -> list[list[str]]:
    calls = []

    def run(command, **kwargs):
        calls.append(command)
        return answers[command[0]].pop(0)

    monkeypatch.setattr(subprocess, "run", run)
    return calls


def test_without_accounting_jobs_are_followed_with_squeue(monkeypatch, caplog):
    queue = [subprocess.CompletedProcess([], 0, "41_0|RUNNING\n41_1|PENDING\n41_2|CONFIGURING\n", ""),
             subprocess.CompletedProcess([], 0, "41_1|REQUEUED\n", "")]
    calls = fake_slurm(monkeypatch, {"sacct": [NO_ACCOUNTING], "squeue": queue})
    watcher = QueueWatcher()
    for job in ("41_0", "41_1", "41_2"):
        watcher.register_job(job)
    with caplog.at_level(logging.INFO, logger="mtlv.run.slurm"):
        watcher.update()
    assert [watcher.get_state(j, mode="cache") for j in ("41_0", "41_1", "41_2")] == ["RUNNING", "PENDING", "RUNNING"]
    assert not any(watcher.is_done(j, mode="cache") for j in ("41_0", "41_1", "41_2"))
    assert [r.getMessage() for r in caplog.records] == [
        "sacct unavailable (Slurm accounting storage is disabled): following the jobs with squeue"]

    watcher.update()  # 41_0 and 41_2 have left the queue (ended); 41_1 was requeued and waits
    assert [c[0] for c in calls] == ["sacct", "squeue", "squeue"]  # sacct is not asked again
    assert watcher.is_done("41_0", mode="cache") and watcher.is_done("41_2", mode="cache")
    assert not watcher.is_done("41_1", mode="cache")
    assert len(caplog.records) == 1


def test_with_accounting_sacct_decides(monkeypatch):
    sacct = subprocess.CompletedProcess([], 0, "JobID|State|NodeList\n7_0|COMPLETED|n1\n7_1|RUNNING|n2\n", "")
    calls = fake_slurm(monkeypatch, {"sacct": [sacct], "squeue": []})
    watcher = QueueWatcher()
    watcher.register_job("7_0")
    watcher.register_job("7_1")
    watcher.update()
    assert watcher.is_done("7_0", mode="cache") and not watcher.is_done("7_1", mode="cache")
    assert [c[0] for c in calls] == ["sacct"]


# ----------------------------------------------------------------------------- jobs SLURM can never start
@pytest.mark.parametrize("reason, nodes, cpus, limit, needle", [
    ("PartitionConfig", None, 4, None, "lower hydra.launcher.cpus_per_task, hydra.launcher.mem_gb"),
    ("PartitionConfig", None, 2, None, "lower hydra.launcher.cpus_per_task, hydra.launcher.mem_gb"),
    ("PartitionTimeLimit", None, 1, None, "lower hydra.launcher.timeout_min"),
    ("PartitionNodeLimit", None, 1, None, "lower hydra.launcher.nodes"),
    ("QOSMaxCpuPerJobLimit", None, 8, None, "lower hydra.launcher.cpus_per_task"),
    ("AssocMaxWallDurationPerJobLimit", None, 1, None, "lower hydra.launcher.timeout_min"),
    ("ReqNodeNotAvail, UnavailableNodes:ghost", {"n1", "n2"}, 1, None, "node ghost, which this cluster does not have"),
    ("AssocGrpCpuLimit", None, 4, 2, "asks for 4 CPUs and its account may use 2 at once"),
    # waits that end by themselves
    ("Priority", None, 1, None, None),
    ("Resources", None, 64, None, None),
    ("ReqNodeNotAvail, UnavailableNodes:n2", {"n1", "n2"}, 1, None, None),       # n2 is down: it comes back
    ("ReqNodeNotAvail, UnavailableNodes:n[1-2]", {"n1", "n2"}, 1, None, None),   # a host range: not decided
    ("AssocGrpCpuLimit", None, 2, 4, None),                                       # others' jobs will end
    ("AssocGrpCpuLimit", None, 4, None, None),                                    # limit unknown
])
def test_never_starts(reason, nodes, cpus, limit, needle):
    why = never_starts(reason, nodes, cpus, limit)
    assert (why is None) if needle is None else (needle in why and why.startswith(reason.split(",")[0])), why


def test_a_job_that_can_never_start_ends_the_wait_and_a_waiting_one_is_shown(monkeypatch, tmp_path, caplog):
    """A job asking 4 CPUs of a 2-CPU partition pends (PartitionConfig) forever: the watcher raises one error
    naming the options to lower, where the sweep used to wait in silence; a job waiting its turn is said, and
    written where a study's status line reads it (MTLV_QUEUE_STATUS)."""
    status = tmp_path / "queue.txt"
    monkeypatch.setenv("MTLV_QUEUE_STATUS", str(status))
    queue = [subprocess.CompletedProcess([], 0, "52_0|PENDING|4|debug|Priority\n52_1|PENDING|4|debug|Priority\n", ""),
             subprocess.CompletedProcess([], 0, "52_0|RUNNING|4|debug|None\n52_1|PENDING|4|debug|PartitionConfig\n", "")]
    calls = fake_slurm(monkeypatch, {"sacct": [NO_ACCOUNTING], "squeue": queue,
                                     "sinfo": [subprocess.CompletedProcess([], 0, "2\n", "")]})
    watcher = QueueWatcher()
    for job in ("52_0", "52_1"):
        watcher.register_job(job)
    with caplog.at_level(logging.INFO, logger="mtlv.run.slurm"):
        watcher.update()
    assert watcher.waiting() == "2 job(s) waiting in the SLURM queue (Priority: 52_0, 52_1)"
    assert status.read_text() == watcher.waiting() and watcher.waiting() in caplog.text
    with pytest.raises(UnschedulableError) as info:
        watcher.update()
    message = str(info.value)
    assert "SLURM can never start job 52_1 (PartitionConfig: it asks for 4 CPUs and the nodes of its partition have 2" \
        in message
    assert "lower hydra.launcher.cpus_per_task to 2 or fewer" in message and "\n" not in message
    assert calls[-1] == ["sinfo", "-h", "-p", "debug", "-o", "%c"]
    assert watcher.get_state("52_0", mode="cache") == "RUNNING"


def test_with_accounting_a_pending_job_is_asked_about_in_squeue(monkeypatch):
    sacct = subprocess.CompletedProcess([], 0, "JobID|State|NodeList\n9_0|PENDING|None assigned\n", "")
    squeue = subprocess.CompletedProcess([], 0, "9_0|PENDING|2|gpu|QOSMaxWallDurationPerJobLimit\n", "")
    calls = fake_slurm(monkeypatch, {"sacct": [sacct], "squeue": [squeue]})
    watcher = QueueWatcher()
    watcher.register_job("9_0")
    with pytest.raises(UnschedulableError, match="lower hydra.launcher.timeout_min"):
        watcher.update()
    assert [c[0] for c in calls] == ["sacct", "squeue"]
