"""Stopping a parallel sweep from outside: SIGTERM to the sweeper ends its worker processes too.

Before the fix, the sweeper died and its two joblib workers went on training the queued jobs
(here: sat in the injected wait for 5 minutes), with nobody left to collect their results."""
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


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from Linux's /proc")
def test_sigterm_to_the_sweeper_stops_its_parallel_jobs(tmp_path):
    marker = tmp_path / "waiting"
    # Every job blocks after its first batch (for 5 minutes, then kills itself): a stop must end them.
    fault = f"+callbacks.fault={{_target_:mtlv.run.faults.KillAt,epoch:0,batch:1,action:wait,wait_s:300,marker:{marker}}}"
    args = [*FAST, "arch=stl", "logger=none", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", fault]
    env = dict(os.environ, MTLV_OUTPUT_DIR=str(tmp_path / "out"), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("SLURM_NTASKS", None)  # under SLURM, SIGTERM is left to the jobs' pre-emption handling
    err = tmp_path / "stderr"
    with err.open("w") as stderr:
        sweep = subprocess.Popen([sys.executable, "-m", "mtlv.train", "-m", *args], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    try:
        deadline = time.time() + 240
        while not marker.exists() and sweep.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert marker.exists(), err.read_text()[-3000:]
        assert len(workers_of(sweep.pid)) == 2  # both jobs are running (one waits, the other trains or waits)

        sweep.send_signal(signal.SIGTERM)  # the sweeper only, as `kill PID` does: the workers get nothing
        code = sweep.wait(timeout=60)
        deadline = time.time() + 20
        while workers_of(sweep.pid) and time.time() < deadline:
            time.sleep(0.2)
        assert workers_of(sweep.pid) == []
        assert code == 128 + signal.SIGTERM  # as a shell reports a process ended by SIGTERM
        last = err.read_text().strip().splitlines()[-1]
        assert last.startswith("stopped: SIGTERM ended the sweep") and "rerunning the same command" in last
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sweep.pid, signal.SIGKILL)
