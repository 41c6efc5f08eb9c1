"""`data.test_curve=true` scores the test set after every epoch, for the report's F1-vs-epoch plots only:
the validation metrics of every epoch, the checkpoint kept, the threshold and the final metrics must be
exactly those of the same job with it off (it is not part of a job's identity: tests/report/test_curves.py)."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import TINY, run_cli

from mtlv import tracking
from mtlv.io import read_json

pytestmark = pytest.mark.slow  # two 4-epoch jobs (~1 min each on 2 idle cores)

EPOCHS = 4
# Learning rates at which the tiny model's validation F1-macro moves between epochs (measured: 0, 0,
# 0.19, 0.12; best epoch 3 of 4): at the default ones it stays 0, and equal curves would prove little.
LEARNING = ["model.module.lr=3e-3", "model.module.head_lr=3e-2"]


def history(out, run_id: str, key: str) -> list[tuple[int, float]]:
    client = tracking.client(f"sqlite:///{out}/mlflow.db")
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_test_curve_changes_nothing_but_the_curve(tmp_path):
    jobs = {}
    for curve in ("false", "true"):
        out = tmp_path / f"curve-{curve}"  # its own folder: the job would otherwise be found finished
        run_cli("mtlv.train", [*TINY, *LEARNING, f"trainer.max_epochs={EPOCHS}", f"data.test_curve={curve}",
                               "torch_threads=1"], out, timeout=1800)  # only a hang: minutes on a shared machine
        (folder,) = (out / "runs" / "demo").glob("mtl-*/model")
        jobs[curve] = (out, folder, read_json(folder / "result.json")["run_id"])
    (off_out, off, off_run), (on_out, on, on_run) = jobs["false"], jobs["true"]

    # The curve is really there with it on, and absent with it off.
    assert [v for _, v in history(on_out, on_run, "curve/epoch")] == [1.0, 2.0, 3.0, 4.0]
    assert history(off_out, off_run, "curve/test_f1_macro") == []
    # Validation after every epoch: the numbers the checkpoint is chosen on.
    assert len({v for _, v in history(off_out, off_run, "val/f1_macro")}) > 1  # the choice of epoch is a real one
    for key in ("val/f1_macro", "val/f1_micro", "val/loss", "val/subset_accuracy"):
        assert len(history(off_out, off_run, key)) == EPOCHS
        assert history(on_out, on_run, key) == history(off_out, off_run, key), key
    # The checkpoint kept: the same epoch, the same weights.
    best_off, best_on = (torch.load(f / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
                         for f in (off, on))
    assert best_on["epoch"] == best_off["epoch"]
    assert best_on["state_dict"].keys() == best_off["state_dict"].keys()
    for name, tensor in best_off["state_dict"].items():
        assert torch.equal(best_on["state_dict"][name], tensor), name
    # The final evaluation: threshold, validation and test metrics, to the last digit.
    m_off, m_on = (read_json(f / "metrics.json") for f in (off, on))
    assert m_on["threshold"] == m_off["threshold"]
    for part in ("val", "test", "test_at_0.5"):
        assert json.dumps(m_on[part], sort_keys=True) == json.dumps(m_off[part], sort_keys=True), part
    assert (on / "predictions_val.csv").read_bytes() == (off / "predictions_val.csv").read_bytes()
