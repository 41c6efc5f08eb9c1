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
import torch
from helpers import ROOT, run_cli

from mtlv.io import read_json

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

FAST = ["model=tiny", "dataset.limit=120", "trainer.max_epochs=1", "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false", "eval.save_weights=false", "logger=none", "torch_threads=1"]
GMTL = ["arch=gmtl", "clustering.k=3"]
SLURM = ["hydra/launcher=slurm_cpu", "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
         "hydra.launcher.mem_gb=2"]
# A job waits after batch 3 of its first epoch (of 6) until it is told to stop; see mtlv.run.faults.
PAUSE = "+callbacks.fault={{_target_:mtlv.run.faults.KillAt,epoch:0,batch:3,action:pause,wait_s:1800,marker:'{marker}'}}"


def cell(out: Path, arch: str) -> Path:
    return next((out / "runs").glob(f"*/{arch}-*"))


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
        a, b = (torch.load(f / group / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
                for f in (got, want))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), group  # same final weights


@pytest.fixture(scope="module")
def stl(tmp_path_factory) -> list[str]:
    """STL on three of the demo labels (three jobs, not eight), from a CSV file as users bring data."""
    import pandas as pd

    from mtlv.data.sources.demo import load_demo

    corpus, keep = load_demo(), [6, 1, 4]
    labels = [";".join(corpus.label_names[j] for j in keep if row[j]) for row in corpus.labels]
    path = tmp_path_factory.mktemp("data") / "three_labels.csv"
    pd.DataFrame({"text": corpus.texts, "labels": labels}).to_csv(path, index=False)
    return ["arch=stl", "dataset=csv", f"dataset.path={path}"]


@pytest.fixture(scope="module")
def basic(tmp_path_factory, stl):
    """The reference: both sweeps with Hydra's basic launcher, in one process."""
    out = tmp_path_factory.mktemp("basic")
    for args in (stl, GMTL):
        run_cli("mtlv.train", [*FAST, *args], out)
    return out


def start_cli(args: list[str], out: Path) -> subprocess.Popen:
    env = dict(os.environ, MTLV_OUTPUT_DIR=str(out), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "mtlv.train", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def paused_jobs(markers: list[Path], proc: subprocess.Popen, timeout: float = 900) -> list[str]:
    """SLURM job ids (array_task) of the jobs that wrote these markers and now wait (`timeout`: a hang)."""
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


def finish(proc: subprocess.Popen, timeout: float = 1200) -> tuple[int, str]:
    try:
        output = proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the sweep did not finish:\n{proc.communicate()[0][-5000:]}") from None
    return proc.returncode, output


def test_stl_sweep_on_slurm_gives_the_basic_launchers_results(slurm_cluster, basic, stl, tmp_path):
    proc = run_cli("mtlv.train", [*FAST, *stl, *SLURM], tmp_path)
    same_as_basic(tmp_path, basic, "stl")
    logs = job_logs(tmp_path)  # the jobs really ran as tasks of one SLURM array
    assert len(logs) == len(list(cell(basic, "stl").glob("group-*"))) == 3
    assert all("JobEnvironment(job_id=" in text for text in logs.values())
    output = proc.stdout + proc.stderr
    assert "Bypassing sacct error" not in output  # accounting is off on this cluster
    assert output.count("sacct unavailable") <= 1


def test_preempted_requeued_and_cancelled_jobs(slurm_cluster, basic, tmp_path):
    """A GMTL sweep of three group jobs, each stopped after batch 3 of its first epoch (of 6):
    group 0 gets SIGUSR1, as `--signal=USR1@<s>` sends it before the time limit (it saves and
    requeues itself); group 1 is requeued by the scheduler (`scontrol requeue`: SIGTERM, requeue);
    group 2 is cancelled (`scancel`). Groups 0 and 1 resume mid-epoch in the same sweep; rerunning
    the command queues and runs only group 2 (from its checkpoint). The result is the uninterrupted one."""
    markers = [tmp_path / f"paused-{i}" for i in range(3)]
    args = [*FAST, *GMTL, *SLURM, PAUSE.format(marker=tmp_path / "paused-${group_index}")]
    proc = start_cli(args, tmp_path)
    signalled, requeued = paused_jobs(markers[:2], proc)  # two CPUs: group 2 starts once one is free
    subprocess.run(["scancel", "--signal=USR1", signalled], check=True)
    subprocess.run(["scontrol", "requeue", requeued], check=True)
    [cancelled] = paused_jobs(markers[2:], proc)
    subprocess.run(["scancel", cancelled], check=True)
    code, output = finish(proc)
    assert code == 2, output[-3000:]
    assert "1 of 3 jobs failed" in output and f"SLURM job {cancelled} ended without a result" in output
    folder = cell(tmp_path, "gmtl")
    done = [folder / f"group-0{i}" / "result.json" for i in range(3)]
    assert done[0].exists() and done[1].exists() and not done[2].exists()
    logs = job_logs(tmp_path)
    assert "SIGUSR1: saved" in logs[signalled] and f"requeued SLURM job {signalled}" in logs[signalled]
    assert "SIGTERM: saved" in logs[requeued] and "SIGTERM: saved" in logs[cancelled]
    for job in (signalled, requeued):
        assert "resuming epoch 0 after batch 3" in logs[job]
    finished = [path.stat().st_mtime_ns for path in done[:2]]

    rerun = run_cli("mtlv.train", args, tmp_path)
    assert "3 group models aggregated" in rerun.stdout
    assert [path.stat().st_mtime_ns for path in done[:2]] == finished  # not retrained
    logs = {job: text for job, text in job_logs(tmp_path).items() if job.split("_")[0] != signalled.split("_")[0]}
    # only the cancelled group is queued again: the two finished ones are kept by the sweeper, not submitted
    assert "sweep: 2 jobs finished before with the same config are kept" in rerun.stdout + rerun.stderr
    assert len(logs) == 1 and "resuming epoch 0 after batch 3" in next(iter(logs.values()))
    same_as_basic(tmp_path, basic, "gmtl")


def test_a_gpu_sweep_is_submitted_from_a_node_without_gpu_and_checked_on_its_node(slurm_cluster, tmp_path):
    """The submitting machine has no GPU: `trainer=gpu` is not refused there; the job checks the node it
    lands on, and this cluster's node has no GPU either, so the job fails with that one error line."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the node would have one too")
    proc = run_cli("mtlv.train", ["-m", "arch=mtl", *FAST, "trainer=gpu", *SLURM], tmp_path, check=False)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    [log] = job_logs(tmp_path).values()  # it was queued and ran on the node
    assert "JobEnvironment(job_id=" in log
    assert "error: 1 of 1 jobs failed" in proc.stderr and "Traceback" not in proc.stderr
    assert "ConfigError: trainer.accelerator=gpu (trainer=gpu, trainer=ddp) needs CUDA" in proc.stderr


def test_a_job_slurm_can_never_start_is_one_error_line(slurm_cluster, tmp_path):
    """Asking more CPUs than the node has: SLURM queues the job and keeps it PENDING (PartitionConfig) forever,
    where the sweep (and a study) waited in silence. Now one error line naming the option to lower, exit 2, and
    the jobs are cancelled, not left in the queue."""
    cpus = max(int(c.rstrip("+")) for c in subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True,
                                                         check=True).stdout.split())
    args = ["-m", "arch=mtl", *FAST, *[o for o in SLURM if "cpus_per_task" not in o],
            f"hydra.launcher.cpus_per_task={cpus + 2}"]
    start = time.time()
    proc = run_cli("mtlv.train", args, tmp_path, check=False, timeout=600)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert time.time() - start < 300  # not a wait for the job
    assert "Traceback" not in proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "SLURM can never start job" in line and f"it asks for {cpus + 2} CPUs" in line
    assert f"lower hydra.launcher.cpus_per_task to {cpus} or fewer" in line
    assert subprocess.run(["squeue", "--me", "-h"], capture_output=True, text=True).stdout.strip() == ""
