"""`trainer=ddp` with 2 gloo processes on CPU scores every validation and test document once, writes
each file once, and matches a 1-process run of the same model. With lr=0 both runs keep the same
initial weights, so any difference can only come from how predictions are collected.
Slow: two processes start and meet over gloo (~80 s on the shared 2-core machine)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

from mtlv.config import compose
from mtlv.run.job import run_job

pytestmark = pytest.mark.slow

SAME = ["model=tiny", "dataset.limit=120", "trainer.max_epochs=1", "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false", "logger=none", "eval.save_weights=false", "torch_threads=1",
        "model.module.lr=0", "model.module.head_lr=0", "data.eval_batch_size=7"]  # 7: uneven shards


@pytest.fixture(scope="module")
def ddp_and_single(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    # cls pooling (model=tiny's default): BERT's pooler is unused, which stopped DDP before.
    run_cli("mtlv.train", [*SAME, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                           "trainer.precision=32-true"], out, timeout=600)
    [ddp] = [p.parent for p in (out / "runs").rglob("result.json")]
    single = run_job(compose([*SAME, "trainer=cpu", f"paths.output_dir={tmp_path_factory.mktemp('single')}"]))
    return ddp, Path(single["folder"])


@pytest.mark.parametrize("part, n", [("val", 15), ("test", 24)])
def test_ddp_predictions_cover_every_document_once(ddp_and_single, part, n):
    ddp, single = ddp_and_single
    frame = pd.read_csv(ddp / f"predictions_{part}.csv", dtype={"id": str})
    assert len(frame) == n and frame["id"].is_unique
    reference = pd.read_csv(single / f"predictions_{part}.csv", dtype={"id": str})
    assert sorted(frame["id"]) == sorted(reference["id"])
    frame, reference = frame.set_index("id").sort_index(), reference.set_index("id").sort_index()
    np.testing.assert_allclose(frame.to_numpy(float), reference.to_numpy(float), atol=2e-6)


def test_ddp_metrics_equal_one_process(ddp_and_single):
    ddp, single = (json.loads((folder / "metrics.json").read_text()) for folder in ddp_and_single)
    assert ddp["threshold"] == single["threshold"]
    for part in ("test", "val", "test_at_0.5"):
        for key in ("f1_macro", "f1_micro", "subset_accuracy"):
            assert ddp[part][key] == pytest.approx(single[part][key], abs=1e-9), (part, key)
