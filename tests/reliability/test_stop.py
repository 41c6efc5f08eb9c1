"""Stopping a parallel sweep from outside ends its worker processes too (mtlv/run/stop.py).

Before the fix, SIGTERM ended the sweeper alone: its two joblib workers went on training the queued
jobs (here: sat in the injected wait for 5 minutes), with nobody left to collect their results; after
a SIGKILL they stayed, idle and holding their memory, until killed by hand."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability._support import FAST, ROOT


def workers_of(pgid: int) -> list[int]:
    """Live joblib/loky worker processes of the process group (read from /proc: no psutil needed)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        # fields: state, ppid, pgrp, ...; a zombie has ended (its parent has not reaped it yet)
        if int(fields[2]) == pgid and fields[0] != "Z" and b"popen_loky" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


LINUX = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from Linux's /proc")


@contextlib.contextmanager
def waiting_sweep(tmp_path: Path):
    """A parallel STL sweep whose jobs block after their first batch (for 30 minutes, then kill themselves):
    yields the sweeper's process and its stderr file once both running jobs block. All is killed after.
    The waits below only catch hangs: a loaded machine may take minutes to start the workers."""
    markers = tmp_path / "waiting"  # a folder: one file per waiting job, named by its worker's process id
    fault = ("+callbacks.fault={_target_:mtlv.run.faults.KillAt,epoch:0,batch:1,action:wait,wait_s:1800,"
             f"marker:'{markers}/'}}")
    args = [*FAST, "arch=stl", "logger=none", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", fault]
    env = dict(os.environ, MTLV_OUTPUT_DIR=str(tmp_path / "out"), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("SLURM_NTASKS", None)  # under SLURM, SIGTERM is left to the jobs' pre-emption handling
    err = tmp_path / "stderr"
    with err.open("w") as stderr:
        sweep = subprocess.Popen([sys.executable, "-m", "mtlv.train", "-m", *args], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        deadline = time.time() + 900
        while len(list(markers.glob("*"))) < 2 and sweep.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert sorted(int(p.name) for p in markers.glob("*")) == sorted(workers_of(sweep.pid)), \
            err.read_text()[-3000:]  # both jobs wait, each in its own worker
        yield sweep, err
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sweep.pid, signal.SIGKILL)


def workers_gone(pgid: int, within_s: float = 300) -> bool:
    deadline = time.time() + within_s
    while workers_of(pgid) and time.time() < deadline:
        time.sleep(0.2)
    return workers_of(pgid) == []


@LINUX
def test_sigterm_to_the_sweeper_stops_its_parallel_jobs(tmp_path):
    with waiting_sweep(tmp_path) as (sweep, err):
        sweep.send_signal(signal.SIGTERM)  # the sweeper only, as `kill PID` does: the workers get nothing
        code = sweep.wait(timeout=300)
        assert workers_gone(sweep.pid)
        assert code == 128 + signal.SIGTERM  # as a shell reports a process ended by SIGTERM
        last = err.read_text().strip().splitlines()[-1]
        assert last.startswith("stopped: SIGTERM ended the sweep") and "rerunning the same command" in last


@LINUX
def test_a_sweeper_killed_outright_takes_its_workers_with_it(tmp_path):
    """SIGKILL runs no handler in the sweeper: the kernel ends the workers (PR_SET_PDEATHSIG)."""
    with waiting_sweep(tmp_path) as (sweep, err):
        sweep.kill()
        assert sweep.wait(timeout=300) == -signal.SIGKILL
        assert workers_gone(sweep.pid)
