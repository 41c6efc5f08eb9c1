"""STL/GMTL sweeps submitted to a real (local, single-node) SLURM cluster through the CLI, as a user
would: the same results as the basic launcher; a cancelled job rerun by the same command; jobs
pre-empted mid-epoch (SIGUSR1 before the time limit, `scontrol requeue`) resume and end exactly as
uninterrupted ones. Run with `pytest -m slurm` (.ci/run does); skipped where SLURM is not installed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, run_cli

from mtlv.grouping import TaskGrouping
from mtlv.io import read_json

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

FAST = ["model=tiny", "dataset.limit=120", "trainer.max_epochs=1", "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false", "eval.save_weights=false", "logger=none", "torch_threads=1"]
ARCHS = {"stl": ["arch=stl"], "gmtl": ["arch=gmtl", "clustering.k=2"]}
SLURM = ["hydra/launcher=slurm_cpu", "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
         "hydra.launcher.mem_gb=2"]
# A job waits after batch 3 of its first epoch (of 6) until it is told to stop; see mtlv.faults.
PAUSE = "+callbacks.fault={{_target_:mtlv.faults.KillAt,epoch:0,batch:3,action:pause,wait_s:300,marker:'{marker}'{label}}}"


def cell(out: Path, arch: str) -> Path:
    return next((out / "runs" / "demo").glob(f"{arch}-*"))


def metrics(folder: Path) -> str:
    """The evaluation report, compared exactly (json keeps NaN for undefined F1)."""
    return json.dumps(read_json(folder / "metrics.json"), sort_keys=True)


def job_logs(out: Path) -> dict[str, str]:
    """stdout and stderr of each SLURM job (array_task), all its runs (requeues append)."""
    logs: dict[str, str] = {}
    for path in sorted(out.glob("hydra/*/*/.submitit/*/*_log.*")):
        logs[path.parent.name] = logs.get(path.parent.name, "") + path.read_text()
    return logs


def same_as_basic(out: Path, basic: Path, arch: str) -> None:
    got, want = cell(out, arch), cell(basic, arch)
    assert metrics(got) == metrics(want)
    groups = sorted(p.name for p in want.glob("group-*"))
    assert sorted(p.name for p in got.glob("group-*")) == groups
    for group in groups:
        assert metrics(got / group) == metrics(want / group), group


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    """The reference: both sweeps with Hydra's basic launcher, in one process."""
    out = tmp_path_factory.mktemp("basic")
    for args in ARCHS.values():
        run_cli("mtlv.train", [*FAST, *args], out)
    return out


def start_cli(args: list[str], out: Path) -> subprocess.Popen:
    env = dict(os.environ, MTLV_OUTPUT_DIR=str(out), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "mtlv.train", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def paused_jobs(markers: list[Path], proc: subprocess.Popen, timeout: float = 240) -> list[str]:
    """SLURM job ids (array_task) of the jobs that wrote these markers and now wait."""
    deadline = time.time() + timeout
    while not all(m.exists() for m in markers):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise AssertionError(f"jobs did not reach the pause point:\n{proc.communicate()[0][-5000:]}")
        time.sleep(0.5)
    ids = []
    for marker in markers:
        pid = int(marker.read_text().split()[0])
        env = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in v)
        ids.append(f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}")
    return ids


def finish(proc: subprocess.Popen, timeout: float = 420) -> tuple[int, str]:
    try:
        output = proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the sweep did not finish:\n{proc.communicate()[0][-5000:]}") from None
    return proc.returncode, output


@pytest.mark.parametrize("arch", ["stl", "gmtl"])
def test_sweep_on_slurm_gives_the_basic_launchers_results(slurm_cluster, basic, tmp_path, arch):
    proc = run_cli("mtlv.train", [*FAST, *ARCHS[arch], *SLURM], tmp_path)
    same_as_basic(tmp_path, basic, arch)
    logs = job_logs(tmp_path)  # the jobs really ran as tasks of a SLURM array
    assert len(logs) == len(list(cell(basic, arch).glob("group-*")))
    assert all("JobEnvironment(job_id=" in text and "_" in name for name, text in logs.items())
    output = proc.stdout + proc.stderr
    assert "Bypassing sacct error" not in output  # accounting is off on this cluster
    assert output.count("sacct unavailable") <= 1


def test_cancelled_job_is_rerun_by_the_same_command(slurm_cluster, basic, tmp_path):
    label = TaskGrouping.load(cell(basic, "gmtl") / "groups.yaml").named_groups()[1][0]
    marker = tmp_path / "paused"
    args = [*FAST, *ARCHS["gmtl"], *SLURM, PAUSE.format(marker=marker, label=f",label:'{label}'")]
    proc = start_cli(args, tmp_path)
    [job] = paused_jobs([marker], proc)
    subprocess.run(["scancel", job], check=True)
    code, output = finish(proc)
    assert code == 2, output[-3000:]
    assert "1 of 2 jobs failed" in output and f"SLURM job {job} ended without a result" in output
    group0 = cell(tmp_path, "gmtl") / "group-00" / "result.json"
    assert group0.exists() and not (cell(tmp_path, "gmtl") / "group-01" / "result.json").exists()
    before = group0.stat().st_mtime_ns

    rerun = run_cli("mtlv.train", args, tmp_path)
    assert "2 group models aggregated" in rerun.stdout
    assert group0.stat().st_mtime_ns == before  # group 0 was not retrained: its job skipped at once
    assert sum("already finished" in text for text in job_logs(tmp_path).values()) == 1
    assert sum("resuming from" in text for text in job_logs(tmp_path).values()) == 1  # the cancelled one
    same_as_basic(tmp_path, basic, "gmtl")


def test_preempted_jobs_resume_mid_epoch_with_identical_results(slurm_cluster, basic, tmp_path):
    """Group 0 gets SIGUSR1, as `--signal=USR1@<s>` sends it before the time limit (it saves and
    requeues itself); group 1 is requeued by the scheduler (`scontrol requeue`: SIGTERM, requeue)."""
    markers = [tmp_path / "paused-0", tmp_path / "paused-1"]
    args = [*FAST, *ARCHS["gmtl"], *SLURM, PAUSE.format(marker=tmp_path / "paused-${group_index}", label="")]
    proc = start_cli(args, tmp_path)
    signalled, requeued = paused_jobs(markers, proc)
    subprocess.run(["scancel", "--signal=USR1", signalled], check=True)
    subprocess.run(["scontrol", "requeue", requeued], check=True)
    code, output = finish(proc)
    assert code == 0, output[-3000:]
    same_as_basic(tmp_path, basic, "gmtl")
    logs = job_logs(tmp_path)
    first, second = logs[signalled], logs[requeued]
    assert "SIGUSR1: saved" in first and f"requeued SLURM job {signalled}" in first
    assert "SIGTERM: saved" in second
    for text in (first, second):
        assert "resuming epoch 0 after batch 3" in text
