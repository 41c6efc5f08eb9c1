"""Pre-emption without a cluster: SIGUSR1 (what SLURM's `--signal` sends before the time limit) makes
a job save last.ckpt at the next batch boundary and exit; the rerun resumes mid-epoch and ends with
the weights and metrics of an uninterrupted run. (tests/slurm does the same through a real SLURM.)"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from reliability._support import FAST

from mtlv.config import compose
from mtlv.run.job import run_job

# Two epochs of 5 training batches (68 documents, batch size 16).
RUN = [*FAST, "dataset.limit=100", "trainer.max_epochs=2", "logger=none"]
SIGNAL = "+callbacks.fault={_target_:mtlv.run.faults.KillAt,epoch:0,batch:2,action:signal}"


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_sigusr1_saves_mid_epoch_and_the_resumed_job_ends_as_an_uninterrupted_one(tmp_path):
    reference = run_job(compose([*RUN, f"paths.output_dir={tmp_path / 'reference'}"]))

    out = tmp_path / "preempted"
    with pytest.raises(SystemExit) as stopped:
        run_job(compose([*RUN, f"paths.output_dir={out}", SIGNAL]))
    assert stopped.value.code == 128 + 10  # 128 + SIGUSR1
    last = next(out.glob("runs/demo/*/model/checkpoints/last.ckpt"))
    saved = torch.load(last, map_location="cpu", weights_only=True)
    progress = saved["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
    assert saved["epoch"] == 0 and progress["processed"] == 2  # mid-epoch: after batch 2 of the first epoch
    assert not (last.parent.parent / "result.json").exists()

    resumed = run_job(compose([*RUN, f"paths.output_dir={out}"]))
    for part in ("val", "test", "test_at_0.5"):
        assert resumed[part] == reference[part], part
    assert resumed["threshold"] == reference["threshold"]
    ref_folder, got_folder = Path(reference["folder"]), Path(resumed["folder"])
    assert sorted(p.name for p in (got_folder / "checkpoints").glob("*.ckpt")) == ["best.ckpt", "last.ckpt"]
    for name in ("last.ckpt", "best.ckpt"):
        a, b = weights(ref_folder / "checkpoints" / name), weights(got_folder / "checkpoints" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
