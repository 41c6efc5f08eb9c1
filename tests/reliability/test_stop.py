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


# A plain job (`python -m mtlv.train`, no sweep, no SLURM): two epochs of 5 training batches.
PLAIN = [*FAST, "dataset.limit=100", "trainer.max_epochs=2", "logger=none"]


def paused_job(tmp_path: Path) -> tuple[subprocess.Popen, Path, Path]:
    """A plain job that blocks after batch 2 of epoch 0 until it is told to stop (or 120 s pass: then it
    SIGKILLs itself); returns it, its output folder and its stderr file once it blocks."""
    out, marker, err = tmp_path / "out", tmp_path / "paused", tmp_path / "stderr"
    fault = ("+callbacks.fault={_target_:mtlv.run.faults.KillAt,epoch:0,batch:2,action:pause,wait_s:120,"
             f"marker:'{marker}'}}")
    env = dict(os.environ, MTLV_OUTPUT_DIR=str(out), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("SLURM_NTASKS", None)
    with err.open("w") as stderr:
        job = subprocess.Popen([sys.executable, "-m", "mtlv.train", *PLAIN, fault], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.time() + 300  # only catches a hang
    while not marker.exists() and job.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert marker.exists(), err.read_text()[-3000:]
    return job, out, err


def test_sigterm_to_a_plain_job_saves_exits_143_and_the_rerun_ends_as_an_uninterrupted_run(tmp_path):
    """Before: Lightning's SIGTERM handler ended fit as if it had finished; the job exited 0, silent, no result."""
    import torch

    from mtlv.config import compose
    from mtlv.run.job import run_job

    job, out, err = paused_job(tmp_path)
    try:
        job.send_signal(signal.SIGTERM)
        assert job.wait(timeout=120) == 128 + signal.SIGTERM, err.read_text()[-3000:]
    finally:
        job.kill()
    lines = err.read_text().strip().splitlines()
    last = next(out.glob("runs/demo/*/model/checkpoints/last.ckpt"))
    assert lines[-1] == (f"stopped: SIGTERM ended the job; its state at epoch 0, after batch 2 is saved in {last}, "
                         "and rerunning the same command resumes from there"), lines[-5:]
    assert "Traceback" not in err.read_text()
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["processed"] == 2
    assert not (last.parent.parent / "result.json").exists()

    resumed = run_job(compose([*PLAIN, f"paths.output_dir={out}"]))
    reference = run_job(compose([*PLAIN, f"paths.output_dir={tmp_path / 'reference'}"]))
    assert Path(resumed["folder"]) == last.parent.parent
    for part in ("val", "test", "threshold"):
        assert resumed[part] == reference[part], part


def test_ctrl_c_on_a_plain_job_exits_130_with_a_stopped_line(tmp_path):
    """Before: exit 1 with only Lightning's 'Detected KeyboardInterrupt' message."""
    job, out, err = paused_job(tmp_path)
    try:
        job.send_signal(signal.SIGINT)
        assert job.wait(timeout=120) == 128 + signal.SIGINT, err.read_text()[-3000:]
    finally:
        job.kill()
    last = next(out.glob("runs/demo/*/model")) / "checkpoints" / "last.ckpt"
    assert not last.exists()  # stopped in epoch 0, at once: no checkpoint yet
    assert err.read_text().strip().splitlines()[-1] == (
        "stopped: SIGINT ended the job; it had saved no checkpoint yet; rerunning the same command starts its "
        "training again")
    assert "Traceback" not in err.read_text()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_outside_training_stops_a_plain_job_at_once(signum, tmp_path, capsys):
    """Loading data or evaluating: the job stops where it is, with the same exit code and line; a checkpoint
    written before is named as kept."""
    from mtlv.run.stop import StopJob

    kept = tmp_path / "last.ckpt"
    kept.write_bytes(b"x")
    outside = signal.signal(signal.SIGINT, signal.default_int_handler)  # a foreground job's, even if pytest runs in the background
    try:
        with pytest.raises(SystemExit) as stopped, StopJob() as stop:
            stop.watch(kept)
            os.kill(os.getpid(), signum)
            time.sleep(30)  # the signal interrupts this
        assert stopped.value.code == 128 + signum
        assert capsys.readouterr().err == (f"stopped: {signal.Signals(signum).name} ended the job; its last checkpoint, "
                                           f"{kept}, is kept, and rerunning the same command resumes from it\n")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers given back
    finally:
        signal.signal(signal.SIGINT, outside)


def test_a_job_started_in_the_background_leaves_an_ignored_sigint_ignored():
    """`cmd &` and nohup start a job with SIGINT ignored, so that the terminal's Ctrl-C does not reach it."""
    from mtlv.run.stop import StopJob

    outside = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopJob():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, outside)


@pytest.mark.parametrize("where", ["sweep", "job"])
def test_a_sigterm_that_python_swallowed_is_delivered_again(where, capsys):
    """A signal handler's exception is only printed ("Exception ignored in ...") when the signal lands in a
    `__del__` or a weakref callback, as it often did between two jobs of a basic-launcher sweep: the sweep
    then ran every job left. A swallowed stop is delivered again, for a sweep and for a plain job."""
    from mtlv.run import stop

    class SignalledWhileCollected:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs here, at the next bytecode check, and its raise is swallowed
                pass

    outside, hook = signal.getsignal(signal.SIGTERM), sys.unraisablehook
    start = time.monotonic()
    expected = stop.SweepStopped if where == "sweep" else SystemExit
    with pytest.raises(expected) as stopped, (stop.StopOnSigterm() if where == "sweep" else stop.StopJob()) as stopping:
        SignalledWhileCollected()  # collected at once: __del__ runs
        while time.monotonic() - start < 10:  # the work: it is stopped again here, not run to its end
            time.sleep(0.01)
    assert stopping.signum == signal.SIGTERM
    if where == "job":
        assert stopped.value.code == 143 and "stopped: SIGTERM ended the job" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is outside and sys.unraisablehook is hook
    time.sleep(0.5)  # nothing raises once it has stopped


def test_a_sigterm_during_a_job_in_the_sweepers_process_stops_the_sweep_after_that_job():
    """Basic launcher: raising inside a running job is unsafe (inside torch's checkpoint writer it became a
    RuntimeError, and the job was recorded as failed while the sweep went on). The job is left to end (Lightning
    stops its own loop at the next batch), then the sweep stops, before the next job."""
    from mtlv.run import stop

    ran = []
    with pytest.raises(stop.SweepStopped), stop.StopOnSigterm() as sweep:
        with stop.sweep_job(sweep):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # a raise from the handler would interrupt this
            ran.append("job 1 ended")
        with stop.sweep_job(sweep):
            ran.append("job 2 ran")
    assert ran == ["job 1 ended"] and sweep.signum == signal.SIGTERM
    assert stop.StopOnSigterm.active is None


def test_a_stop_that_a_library_turned_into_its_own_error_is_still_the_stop(capsys):
    from mtlv.run.stop import StopJob

    with pytest.raises(SystemExit) as stopped, StopJob() as job:
        job.signum = signal.SIGTERM  # received; the raise surfaced as torch's file writer's RuntimeError
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4022848 vs 4022740")
    assert stopped.value.code == 143 and "stopped: SIGTERM ended the job" in capsys.readouterr().err
