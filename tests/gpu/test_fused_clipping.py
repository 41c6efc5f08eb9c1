"""Fused AdamW with gradient clipping (issue: Lightning's mixed-precision plugin refused it)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import TINY

from mtlv.config import compose
from mtlv.evaluation.predictions import Predictions
from mtlv.run.job import run_job
from mtlv.models.module import MultiTaskModule

@pytest.mark.parametrize("precision", ["bf16-mixed", "32-true"])
def test_fused_adamw_clips_gradients(fit, precision):
    clipped = fit(precision, fused=True, clip=1e-3)
    assert all(clipped.fused) and len(clipped.norms) == 3  # zero_grad before steps 2..4 sees steps 1..3
    assert max(clipped.norms) == pytest.approx(1e-3, rel=1e-3)  # the raw norms are far larger:
    assert min(fit(precision, fused=True, clip=None).norms) > 1e-2


def test_fused_adamw_steps_like_foreach_adamw_when_clipping(fit):
    fused, foreach = fit("bf16-mixed", fused=True, clip=0.05), fit("bf16-mixed", fused=False, clip=0.05)
    assert not any(foreach.fused)
    assert fused.norms == pytest.approx(foreach.norms, rel=1e-4)


def test_the_issue_command_trains(tmp_path):
    """`model.module.fused_adamw=true trainer.precision=bf16-mixed` with the default clip (1.0) on CPU."""
    cfg = compose([*TINY, "dataset.limit=100", "trainer.precision=bf16-mixed", "model.module.fused_adamw=true",
                   f"paths.output_dir={tmp_path}", "logger=none", "eval.save_weights=false"])
    assert cfg.trainer.gradient_clip_val == 1.0
    result = run_job(cfg)
    assert Predictions.load(Path(result["folder"]) / "predictions_test.csv").probs.shape[0] == 20


def test_cls_pooling_freezes_the_unused_pooler_only(random_init):
    RANDOM = random_init
    cls = MultiTaskModule("packaged:minilm", groups=[[0]], label_names=["a"], random_init=RANDOM, pooling="cls")
    pooler = MultiTaskModule("packaged:minilm", groups=[[0]], label_names=["a"], random_init=RANDOM, pooling="pooler")
    frozen = {n for n, p in cls.named_parameters() if not p.requires_grad}
    assert frozen == {"encoder.pooler.dense.weight", "encoder.pooler.dense.bias"}
    assert all(p.requires_grad for p in pooler.parameters())
    assert "encoder.pooler.dense.weight" in cls.state_dict()  # exports and checkpoints keep their keys


def test_loss_scaler_falls_back_to_foreach_and_auto_is_fused_on_cuda_only(caplog):
    from types import SimpleNamespace

    from mtlv.models.optim import adamw, is_fused

    params = [{"params": [torch.nn.Parameter(torch.zeros(3))]}]
    fp16 = SimpleNamespace(precision_plugin=SimpleNamespace(scaler=object()), gradient_clip_val=1.0, precision="16-mixed")
    bf16 = SimpleNamespace(precision_plugin=SimpleNamespace(scaler=None), gradient_clip_val=1.0, precision="bf16-mixed")
    assert not is_fused(adamw(params, 1e-3, True, fp16, torch.device("cpu")))
    assert "foreach AdamW instead" in caplog.text
    assert is_fused(adamw(params, 1e-3, True, bf16, torch.device("cpu")))
    assert not is_fused(adamw(params, 1e-3, None, bf16, torch.device("cpu")))  # auto: fused on CUDA only
