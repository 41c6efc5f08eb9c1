"""MTLV's SLURM job watcher without a cluster: sacct and squeue replaced by recorded answers."""
from __future__ import annotations

import logging
import subprocess

from mtlv.run.slurm import QueueWatcher

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
