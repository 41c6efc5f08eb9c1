"""A study's progress lines and ETA, and its time estimate from earlier jobs, with hand-made jobs and a clock."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mtlv.run.cost import EVAL_WEIGHT, host, units
from mtlv.study.estimate import from_history
from mtlv.study.plan import Job, Plan
from mtlv.study.progress import Progress, duration
from mtlv.study.spec import Sweep


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_one_line_per_event_with_counts_and_eta(tmp_path):
    folders = [tmp_path / f"job{i}" for i in range(4)]
    for f in folders:
        f.mkdir()
    jobs = [Job(0, folders[0], tmp_path, "mtl-x", "mtl", "k0", True),                # finished before
            Job(0, folders[1], tmp_path, "stl-x group 0 (a)", "stl", "k1", False),
            Job(0, folders[2], tmp_path, "stl-x group 1 (b)", "stl", "k2", False),
            Job(0, folders[3], tmp_path, "gmtl-x group 0 (a)", "gmtl", "k1", False, reuses=True)]
    clock = Clock(1000.0)
    out = io.StringIO()
    progress = Progress(Plan([Sweep("d", "g", "mtlv.train", ())], jobs), {folders[1]: 100.0, folders[2]: 100.0},
                        workers=1, out=out, clock=clock)
    assert progress.counts() == (1, 0, 4) and progress.eta() == pytest.approx(200.0)
    clock.now = 1150.0  # the first trains in 150 s instead of the estimated 100: the rest is scaled by 1.5
    (folders[1] / "result.json").write_text(json.dumps({"elapsed_s": 150.0, "end": 1149.0, "test": {"f1_macro": 0.5}}))
    (folders[2] / "failed.json").write_text(json.dumps({"error": "InjectedFault: boom", "time": 1100.0}))
    lines = progress.poll()
    assert lines == ["done stl-x group 0 (a): test F1-macro 0.500 (2m30s)", "FAILED stl-x group 1 (b): InjectedFault: boom"]
    assert progress.counts() == (2, 1, 4)
    text = out.getvalue().splitlines()
    assert len(text) == 2 and "\r" not in out.getvalue()
    assert text[0].endswith("2/4 jobs done, 1 failed · elapsed 2m30s")  # the only job left reuses: no estimate
    (folders[3] / "result.json").write_text(json.dumps({"elapsed_s": 150.0, "end": 1151.0, "reused_from": "csv/stl-x/group-00",
                                                        "test": {"f1_macro": 0.5}}))
    assert progress.poll() == ["done gmtl-x group 0 (a): test F1-macro 0.500 (reused stl-x)"]
    assert progress.poll() == []  # nothing new: no line
    clock.now += progress.quiet_s  # a long quiet spell: one status line
    progress.poll()
    assert out.getvalue().splitlines()[-1].endswith("running · 3/4 jobs done, 1 failed · elapsed 7m30s")


def test_why_slurm_jobs_wait_is_in_the_status_line(tmp_path):
    """A SLURM sweep writes why its jobs wait (mtlv/run/slurm.py, MTLV_QUEUE_STATUS): the study says it when it
    changes, instead of a silent wait, and keeps it in later status lines."""
    folder = tmp_path / "job0"
    folder.mkdir()
    out, clock = io.StringIO(), Clock(1000.0)
    progress = Progress(Plan([Sweep("d", "g", "mtlv.train", ())], [Job(0, folder, tmp_path, "mtl-x", "mtl", "k0",
                                                                         False)]),
                        {}, out=out, clock=clock, queue_file=tmp_path / "queue.txt")
    progress.poll()
    assert out.getvalue() == ""  # no file yet: nothing waits
    (tmp_path / "queue.txt").write_text("1 job(s) waiting in the SLURM queue (Priority: 7_0)")
    clock.now = 1010.0
    progress.poll()
    progress.poll()  # unchanged: said once
    (line,) = out.getvalue().splitlines()
    assert line.endswith("waiting · 0/1 jobs done · elapsed 10 s · 1 job(s) waiting in the SLURM queue (Priority: 7_0)")
    (tmp_path / "queue.txt").write_text("")  # it started
    clock.now += progress.quiet_s
    progress.poll()
    assert out.getvalue().splitlines()[-1].endswith("running · 0/1 jobs done · elapsed 5m10s")


def test_eta_scales_the_estimates_and_shares_them_among_workers(tmp_path):
    folders = [tmp_path / f"j{i}" for i in range(3)]
    jobs = [Job(0, f, tmp_path, f"j{i}", "stl", f"k{i}", False) for i, f in enumerate(folders)]
    progress = Progress(Plan([], jobs), {folders[0]: 10.0, folders[1]: 20.0, folders[2]: 30.0}, workers=2,
                        out=io.StringIO(), clock=Clock(0.0))
    assert progress.eta() == pytest.approx(30.0)   # (10 + 20 + 30) / 2
    progress.actual[folders[0]] = 5.0               # twice as fast as estimated
    progress.state[folders[0]] = "done"
    assert progress.eta() == pytest.approx((20 + 30) * 0.5 / 2)


def test_a_stopped_sweep_leaves_its_jobs_to_the_rerun_not_failed(tmp_path):
    folders = [tmp_path / f"j{i}" for i in range(4)]
    for f in folders:
        f.mkdir()
    jobs = [Job(0, folders[0], tmp_path, "j0", "stl", "k0", False), Job(0, folders[1], tmp_path, "j1", "stl", "k1", False),
            Job(1, folders[2], tmp_path, "j2", "stl", "k2", False), Job(1, folders[3], tmp_path, "j3", "stl", "k3", False)]
    sweeps = [Sweep("d", "a", "mtlv.train", ()), Sweep("d", "b", "mtlv.train", ())]
    clock = Clock(1000.0)
    progress = Progress(Plan(sweeps, jobs), {f: 10.0 for f in folders}, out=io.StringIO(), clock=clock)
    (folders[0] / "result.json").write_text(json.dumps({"elapsed_s": 9.0, "end": 1001.0, "test": {"f1_macro": 0.5}}))
    clock.now = 1010.0
    progress.sweep_ended(0, stopped=True)   # SIGTERM: j1 never ran, the second sweep never started
    assert progress.counts() == (1, 0, 4) and progress.not_run() == 3
    assert progress.status() == "1/4 jobs done, 3 left for the rerun · elapsed 10 s"   # no ETA: nothing runs now
    # a sweep that ends on its own without its jobs' results: those failed
    other = Progress(Plan(sweeps, jobs), {}, out=io.StringIO(), clock=Clock(1000.0))
    other.sweep_ended(0)
    assert other.counts() == (1, 1, 4) and other.not_run() == 0


def test_duration_text():
    assert [duration(s) for s in (0, 59.4, 61, 3599, 3600 * 2 + 180)] == ["0 s", "59 s", "1m01s", "59m59s", "2h03m"]


def write_result(folder: Path, work: dict, elapsed: float, key: str = "s1", **extra) -> None:
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"work": work, "elapsed_s": elapsed, "speed_key": key,
                                                    "host": host(), **extra}))


def test_history_fits_fixed_and_per_document_seconds(tmp_path):
    # jobs of 100, 400 and 1000 training documents, 2 epochs: seconds = 5 + 0.01 per work unit, by construction
    works = [{"train": n, "val": n // 5, "test": n // 5, "epochs": 2, "test_curve": False} for n in (100, 400, 1000)]
    for i, work in enumerate(works):
        u = work["train"] * 2 + EVAL_WEIGHT * (work["val"] * 3 + work["test"])
        write_result(tmp_path / "csv" / f"cell{i}" / "model", work, 5 + 0.01 * u)
    # not counted: another speed class, a reused result, another machine
    write_result(tmp_path / "csv" / "other" / "model", works[0], 999.0, key="s2")
    write_result(tmp_path / "csv" / "reused" / "model", works[0], 999.0, reused_from="x")
    (tmp_path / "csv" / "far" / "model").mkdir(parents=True)
    (tmp_path / "csv" / "far" / "model" / "result.json").write_text(json.dumps(
        {"work": works[0], "elapsed_s": 999.0, "speed_key": "s1", "host": "elsewhere"}))
    speed = from_history(tmp_path, "s1")
    assert speed.fixed_s == pytest.approx(5.0, abs=1e-6) and speed.per_doc_s == pytest.approx(0.01)
    assert "3 earlier jobs" in speed.source
    assert units(works[0]) == pytest.approx(200 + (20 * 3 + 20) / 3)
    assert from_history(tmp_path, "nothing") is None
    assert speed.seconds(works[1]) == pytest.approx(5 + 0.01 * units(works[1]))


def test_a_step_budget_counts_the_epochs_it_trains():
    from omegaconf import OmegaConf

    from mtlv.run.cost import epochs_of

    def trainer(max_steps, accumulate=1, max_epochs=3):
        return OmegaConf.create({"max_epochs": max_epochs, "max_steps": max_steps,
                                 "accumulate_grad_batches": accumulate})

    # 100 documents in batches of 4: 25 optimizer steps per epoch
    assert epochs_of(trainer(-1), 100, 4) == 3
    assert epochs_of(trainer(30), 100, 4) == pytest.approx(1.2)      # 25 steps + 5 steps of 4 documents
    assert epochs_of(trainer(75), 100, 4) == 3 and epochs_of(trainer(500), 100, 4) == 3  # max_epochs caps it
    # two batches per step: 13 steps per epoch (the last, odd batch steps alone)
    assert epochs_of(trainer(13, accumulate=2), 100, 4) == pytest.approx(1.0)
    assert epochs_of(trainer(20, accumulate=2), 100, 4) == pytest.approx(1.56)  # 13 + 7 steps of 8 documents
    # a corpus smaller than the budget: 10 documents, 3 steps per epoch
    assert epochs_of(trainer(4, max_epochs=100), 10, 4) == pytest.approx(1.4)
    # the work of a job that stops within its second epoch: 2 validations (end of epoch 1, the end), 1 test
    work = {"train": 100, "val": 20, "test": 20, "epochs": 1.2, "test_curve": False}
    assert units(work) == pytest.approx(120 + (20 * 2 + 20) / 3)
