"""Two commands on one job: the second waits for the first, then finds the job finished (no second
training, no best-v1.ckpt); a lock left by a killed process does not block anyone."""
from __future__ import annotations

import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import mlflow_runs
from reliability._support import FAST, ROOT

from mtlv.layout import JobLayout
from mtlv.run.lock import job_lock

WAITING = "is being trained by another process"
HANG = 600  # generous: only catches a hang, never times a healthy run


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_process_left():
    """A failed test leaves no job behind holding a lock (or waiting for one)."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start(args: list[str], output_dir: Path) -> tuple[subprocess.Popen, queue.Queue]:
    """`python -m mtlv.train ARGS` in its own process; its output lines arrive in the queue (None at the end)."""
    env = dict(os.environ, MTLV_OUTPUT_DIR=str(output_dir), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "mtlv.train", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    STARTED.append(proc)
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def read_until(lines: queue.Queue, needle: str, seen: list[str]) -> str:
    """Collect lines into `seen` until one contains `needle`; that line."""
    while True:
        line = lines.get(timeout=HANG)
        assert line is not None, f"the process ended without printing {needle!r}:\n{''.join(seen)[-4000:]}"
        seen.append(line)
        if needle in line:
            return line


def rest(proc: subprocess.Popen, lines: queue.Queue, seen: list[str]) -> str:
    proc.wait(timeout=HANG)
    while (line := lines.get(timeout=HANG)) is not None:
        seen.append(line)
    return "".join(seen)


def wait_for_file(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + HANG
    while not path.exists():
        assert proc.poll() is None, f"the first job ended before reaching {path.name}"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


@pytest.mark.slow
def test_second_command_waits_then_prints_the_first_ones_result(tmp_path):
    held, release = tmp_path / "held", tmp_path / "release"
    out = tmp_path / "out"
    args = [*FAST, "logger.experiment_name=locked"]
    hold = (f"+callbacks.fault={{_target_:mtlv.run.faults.KillAt,epoch:0,batch:2,action:hold,"
            f"marker:'{held}',release:'{release}'}}")
    first, first_lines = start([*args, hold], out)
    wait_for_file(held, first)  # the first command is training the job (it holds its lock)
    second, second_lines = start(args, out)
    second_seen: list[str] = []
    line = read_until(second_lines, WAITING, second_seen)  # the second one says so and waits
    assert f"(pid {first.pid} on host {socket.gethostname()}); waiting" in line, line
    release.touch()  # the first goes on and finishes

    first_text, second_text = rest(first, first_lines, []), rest(second, second_lines, second_seen)
    assert first.returncode == 0, first_text[-4000:]
    assert second.returncode == 0, second_text[-4000:]
    assert "`Trainer.fit` stopped" in first_text
    # the second did not train: it printed the first one's saved result
    assert "`Trainer.fit` stopped" not in second_text and "resuming from" not in second_text
    assert "already finished with the same config" in second_text
    job = next(out.glob("runs/demo/*/model"))
    run_id = json.loads((job / "result.json").read_text())["run_id"]
    assert f"MLflow run id: {run_id}" in first_text and f"MLflow run id: {run_id}" in second_text
    assert sorted(p.name for p in (job / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]  # no -v1
    runs = mlflow_runs(out, "locked")
    assert list(runs.run_id) == [run_id] and list(runs.status) == ["FINISHED"]


HOLDER = """
import sys, time
from pathlib import Path
from mtlv.layout import JobLayout
from mtlv.run.lock import job_lock
with job_lock(JobLayout(sys.argv[1])):
    Path(sys.argv[2]).touch()
    time.sleep(600)
"""


def hold_in_subprocess(job: JobLayout, held: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(job.folder), str(held)], cwd=ROOT)
    STARTED.append(proc)
    wait_for_file(held, proc)
    return proc


def test_lock_of_a_killed_holder_does_not_block(tmp_path, caplog):
    """A holder SIGKILLed while a second process waits: the waiter gets the lock (the OS released it)."""
    job = JobLayout(tmp_path / "job")
    holder = hold_in_subprocess(job, tmp_path / "held")
    acquired = threading.Event()

    def second() -> None:
        with job_lock(job):
            acquired.set()

    with caplog.at_level(logging.WARNING, logger="mtlv.run.lock"):
        waiter = threading.Thread(target=second, daemon=True)
        waiter.start()
        deadline = time.monotonic() + HANG
        while WAITING not in caplog.text:  # the event: the waiter has logged that it waits
            assert time.monotonic() < deadline and not acquired.is_set(), caplog.text
            time.sleep(0.05)
        assert f"pid {holder.pid} on host {socket.gethostname()}" in caplog.text
        assert not acquired.is_set()  # the holder is alive: the waiter holds nothing
        holder.kill()
        holder.wait()
        assert acquired.wait(HANG), "the lock of a SIGKILLed process blocked the next one"
        waiter.join(HANG)
    # and a lock file left behind by the dead holder does not block a later process either
    assert job.lock.exists()
    with job_lock(job):
        pass


def test_other_ranks_of_a_ddp_job_do_not_take_the_lock(tmp_path, monkeypatch):
    """Rank 0 holds the job's lock while its DDP ranks start and run the same job: they must not wait for it."""
    job = JobLayout(tmp_path / "job")
    hold_in_subprocess(job, tmp_path / "held")
    monkeypatch.setenv("LOCAL_RANK", "1")
    done = threading.Event()

    def rank1() -> None:
        with job_lock(job):
            done.set()

    threading.Thread(target=rank1, daemon=True).start()
    assert done.wait(HANG), "a DDP rank > 0 waited for the lock rank 0 holds"


@pytest.mark.slow
def test_two_sweeps_on_one_output_folder_train_each_group_once(tmp_path):
    """Two GMTL sweeps of the same cell at once: the second waits for the group the first is training,
    neither deadlocks, each group model is trained once and both sweeps aggregate the cell."""
    held, release = tmp_path / "held", tmp_path / "release"
    out = tmp_path / "out"
    args = ["arch=gmtl", "clustering=given", "clustering.groups=[[0,3,5],[1,2,4,6,7]]", *FAST,
            "logger.experiment_name=sweeps"]
    hold = (f"+callbacks.fault={{_target_:mtlv.run.faults.KillAt,epoch:0,batch:2,action:hold,"
            f"marker:'{held}',release:'{release}',label:Cardiomegaly}}")  # group 0 of the first sweep
    first, first_lines = start([*args, hold], out)
    wait_for_file(held, first)
    second, second_lines = start(args, out)
    second_seen: list[str] = []
    line = read_until(second_lines, WAITING, second_seen)
    assert "group-00" in line and f"pid {first.pid} " in line, line
    release.touch()

    first_text, second_text = rest(first, first_lines, []), rest(second, second_lines, second_seen)
    assert first.returncode == 0, first_text[-4000:]
    assert second.returncode == 0, second_text[-4000:]
    assert (first_text + second_text).count("`Trainer.fit` stopped") == 2  # two groups, two trainings
    cell = next(out.glob("runs/demo/gmtl-*"))
    for group in ("group-00", "group-01"):
        assert sorted(p.name for p in (cell / group / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    runs = mlflow_runs(out, "sweeps")
    assert sorted(runs["tags.mtlv.role"]) == ["job", "job", "parent"], runs[["tags.mtlv.role", "status"]]
    assert set(runs.status) == {"FINISHED"}
    assert "aggregated" in first_text and "aggregated" in second_text
