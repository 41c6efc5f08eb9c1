"""A tiny module trained for a few steps on fixed random batches, with the gradient norms it stepped with."""
from __future__ import annotations

import os

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from mtlv.models.module import MultiTaskModule

ENCODER = os.environ.get("MINILM", "packaged:minilm")  # the gpu-kit has no packaged MiniLM; setup.sh exports MINILM
RANDOM = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
          "max_position_embeddings": 64}


class GradNorms(L.Callback):
    """The gradient norm the optimizer stepped with: read before the next step zeroes it."""

    def __init__(self) -> None:
        self.norms: list[float] = []
        self.fused: list[bool] = []

    def on_before_zero_grad(self, trainer, pl_module, optimizer) -> None:
        self.fused.append(bool(optimizer.defaults.get("fused")))
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if grads:
            self.norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))


def batches(n: int = 4, size: int = 8, width: int = 12, labels: int = 3):
    gen = torch.Generator().manual_seed(1)
    return [{"input_ids": torch.randint(5, 900, (size, width), generator=gen),
             "attention_mask": torch.ones(size, width, dtype=torch.long),
             "labels": torch.randint(0, 2, (size, labels), generator=gen).float(),
             "doc_index": torch.arange(size)} for _ in range(n)]


def _fit(precision: str, fused: bool | None, clip: float | None, accelerator: str = "cpu") -> GradNorms:
    module = MultiTaskModule(ENCODER, groups=[[0, 2], [1]], label_names=list("abc"), random_init=RANDOM,
                             lr=1e-3, fused_adamw=fused)
    norms = GradNorms()
    trainer = L.Trainer(accelerator=accelerator, devices=1, precision=precision, gradient_clip_val=clip, max_epochs=1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[norms], limit_val_batches=0)
    trainer.fit(module, train_dataloaders=DataLoader(batches(), batch_size=None))
    return norms




@pytest.fixture
def fit():
    return _fit


@pytest.fixture
def random_init():
    return RANDOM
