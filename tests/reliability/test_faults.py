"""Faults: nothing finished is lost, and a resumed run ends exactly where an uninterrupted one does.

Fast tests crash a job in-process (an exception mid-epoch, after epoch 0's checkpoint); the slow
ones SIGKILL real processes through scripts/fault_drill.py (`pytest -m slow`)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from reliability._support import FAST

from mtlv.run.checkpoint import AtomicCheckpointIO, CheckpointError, verify_checkpoint
from mtlv.config import compose
from mtlv.run.faults import InjectedFault
from mtlv.run.job import run_job

# Three epochs with validation that rarely improves: exercises `last.ckpt` at every epoch.
RESUME = [*FAST, "dataset.limit=100", "trainer.max_epochs=3", "logger=none"]


def job_cfg(out: Path, *extra: str):
    return compose([*RESUME, f"paths.output_dir={out}", *extra])


def crash_at(cfg, epoch: int, batch: int):
    from omegaconf import OmegaConf, open_dict

    with open_dict(cfg):
        cfg.callbacks.fault = OmegaConf.create({"_target_": "mtlv.run.faults.KillAt", "epoch": epoch, "batch": batch,
                                                "action": "raise"})
    return cfg


def folder(result_or_out) -> Path:
    if isinstance(result_or_out, dict):
        return Path(result_or_out["folder"])
    return next(Path(result_or_out).glob("runs/demo/*/model"))


def state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run (and a second one, for determinism)."""
    first = run_job(job_cfg(tmp_path_factory.mktemp("reference")))
    second = run_job(job_cfg(tmp_path_factory.mktemp("again")))
    return folder(first), folder(second)


def same_weights(a: Path, b: Path) -> bool:
    sa, sb = state(a)["state_dict"], state(b)["state_dict"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_same_seed_same_metrics(reference):
    """CPU, same seed, two runs: identical metrics, predictions and weights."""
    a, b = reference
    assert (a / "metrics.json").read_text() == (b / "metrics.json").read_text()
    assert (a / "predictions_test.csv").read_bytes() == (b / "predictions_test.csv").read_bytes()
    assert same_weights(a / "checkpoints" / "last.ckpt", b / "checkpoints" / "last.ckpt")


def test_last_checkpoint_is_written_every_epoch(reference):
    """Lightning >= 2.5 updates last.ckpt only when the monitored metric improves; MTLV's
    ModelCheckpoint writes it after every epoch, so a resume never repeats finished epochs."""
    last = state(reference[0] / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 2 and last["global_step"] == 3 * 5  # 68 train docs, batch 16 -> 5 steps
    assert (reference[0] / "checkpoints" / "best.ckpt").exists()


def test_crash_mid_epoch_then_rerun_resumes_and_equals_the_uninterrupted_run(reference, tmp_path):
    out = tmp_path / "crashed"
    with pytest.raises(InjectedFault):
        run_job(crash_at(job_cfg(out), epoch=1, batch=3))
    job = folder(out)
    assert state(job / "checkpoints" / "last.ckpt")["epoch"] == 0 and not (job / "result.json").exists()

    result = run_job(job_cfg(out))  # the same command again
    assert Path(result["folder"]) == job
    ref = reference[0]
    assert (job / "metrics.json").read_text() == (ref / "metrics.json").read_text()
    assert (job / "predictions_val.csv").read_bytes() == (ref / "predictions_val.csv").read_bytes()
    assert same_weights(job / "checkpoints" / "last.ckpt", ref / "checkpoints" / "last.ckpt")
    assert json.loads((job / "result.json").read_text())["test"] == json.loads((ref / "result.json").read_text())["test"]


def test_resume_is_exact_without_length_grouping_too(tmp_path):
    """A RandomSampler seeded once would replay epoch 0's order after a resume; MTLV's samplers
    draw each epoch's order from (seed, epoch)."""
    extra = ("data.length_grouping=false", "trainer.max_epochs=2", "dataset.limit=60", "model.module.dropout=0.3")
    ref = run_job(job_cfg(tmp_path / "ref", *extra))
    with pytest.raises(InjectedFault):
        run_job(crash_at(job_cfg(tmp_path / "crashed", *extra), epoch=1, batch=2))
    resumed = run_job(job_cfg(tmp_path / "crashed", *extra))
    assert same_weights(folder(ref) / "checkpoints" / "last.ckpt", folder(resumed) / "checkpoints" / "last.ckpt")
    assert (folder(ref) / "metrics.json").read_text() == (folder(resumed) / "metrics.json").read_text()


def test_finished_job_is_not_rerun(reference, tmp_path):
    ref = reference[0]
    before = (ref / "result.json").stat().st_mtime_ns
    out = ref.parents[3]  # the run's output_dir
    result = run_job(job_cfg(out))
    assert (ref / "result.json").stat().st_mtime_ns == before and result["folder"] == str(ref)


def test_truncated_checkpoint_is_refused_with_a_clear_message(reference, tmp_path):
    from mtlv.run.spec import JobSpec

    cfg = job_cfg(tmp_path / "t")
    last = JobSpec.of(cfg).job.folder / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    data = (reference[0] / "checkpoints" / "last.ckpt").read_bytes()
    last.write_bytes(data[: len(data) // 2])  # what a non-atomic copy leaves when killed
    with pytest.raises(CheckpointError, match="truncated or corrupt. Delete it to retrain"):
        run_job(cfg)


def test_fresh_start_clears_stale_checkpoints(tmp_path):
    """resume=false (or a crash before the first checkpoint) must not leave best.ckpt/last.ckpt of
    an older run for Lightning to version around (best-v1.ckpt) or for a later resume to trust."""
    out = tmp_path / "s"
    first = folder(run_job(job_cfg(out, "trainer.max_epochs=1")))
    stale = first / "checkpoints" / "stale-v1.ckpt"
    stale.write_bytes(b"old")
    run_job(job_cfg(out, "trainer.max_epochs=1", "resume=false"))
    names = sorted(p.name for p in (first / "checkpoints").iterdir())
    assert names == ["best.ckpt", "last.ckpt"]


def test_atomic_checkpoint_io_never_leaves_a_partial_file(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "ck" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 0}, path)
    assert io.load_checkpoint(path)["epoch"] == 0

    real_save = torch.save

    def dying_save(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 partial")  # some bytes reach the disk, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 1}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert io.load_checkpoint(path)["epoch"] == 0  # the previous checkpoint, whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]
    verify_checkpoint(path)


def test_checkpoint_staging_stays_on_the_same_filesystem(tmp_path, monkeypatch):
    """Lightning's own writer stages in the system temp folder and moves the file: a copy, not an
    atomic rename, when that is another filesystem. MTLV's stages beside the target."""
    staged = []
    real_replace = os.replace

    def spy(src, dst):
        staged.append((Path(src).parent, Path(dst).parent))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    AtomicCheckpointIO().save_checkpoint({"epoch": 0}, tmp_path / "c" / "last.ckpt")
    assert staged == [(tmp_path / "c", tmp_path / "c")]


def test_failed_sweep_job_is_reported_others_kept_and_the_rerun_runs_only_it(entry, tmp_path):
    """One job of a GMTL sweep crashes: the other finishes and is kept, the sweep ends with a short
    list of what failed (exit 2); the same command again runs only that job, then aggregates."""
    sweep = ["arch=gmtl", "clustering=given", "clustering.groups=[[0,1,2,3],[4,5,6,7]]", *FAST,
             "dataset.limit=60", "logger=none"]
    fault = "+callbacks.fault={_target_:mtlv.run.faults.KillAt,epoch:0,batch:1,action:raise,label:Effusion}"
    code, _, err = entry(*sweep, fault)
    assert code == 2 and "Traceback" not in err, err
    assert "error: 1 of 2 jobs failed (finished jobs are kept; rerun the same command" in err
    assert "group_index=0: InjectedFault: injected fault at epoch 0, after batch 1" in err
    assert "1 of 2 group jobs have not finished: group 0 (Cardiomegaly, Effusion, opacity, Atelectasis)" in err
    cell = next((tmp_path / "out" / "runs" / "demo").glob("gmtl-tiny-*"))
    done = {p.parent.name: p.stat().st_mtime_ns for p in cell.glob("group-*/result.json")}
    assert sorted(done) == ["group-01"]

    code, out, err = entry(*sweep)
    assert code == 0, err
    # the finished job is not launched again (on SLURM: not queued); its saved summary is printed once
    assert "sweep: 1 jobs (1 one-model-per-group cells)" in out + err
    assert "sweep: 1 jobs finished before with the same config are kept" in out + err
    assert out.count("not retrained") == 1
    assert "== gmtl-tiny-given group 1 (Calcified granuloma, Nodule, Emphysema, spine/degenerative)" in out
    after = {p.parent.name: p.stat().st_mtime_ns for p in cell.glob("group-*/result.json")}
    assert sorted(after) == ["group-00", "group-01"] and after["group-01"] == done["group-01"]
    assert (cell / "aggregate.json").exists()


# ----------------------------------------------------------------------------- real kills (slow)
@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_is_exact(drill, tmp_path):
    checks = drill.drill_run(tmp_path)
    assert checks.passed, checks.results


@pytest.mark.slow
def test_sigkill_a_sweep_then_rerun_runs_only_unfinished_jobs(drill, tmp_path):
    checks = drill.drill_sweep(tmp_path, reference=True)
    assert checks.passed, checks.results
