"""Heads weighted by their share of the labels, so that the loss is the mean over all labels: MTL's loss.

A head's loss is the mean binary cross-entropy over its labels. Summing the heads (the reference's GMHL
loss, `sum`) gives a label that sits alone in its head the weight of a whole 15-label head, so the shared
encoder learns mostly for the few labels in small groups; averaging the heads (`mean`) keeps those
proportions. Weighting head i by n_i / sum(n) makes every label count the same, as in MTL's one head: GMHL
then differs from MTL only in its heads (one per group; with `model.module.head_hidden`, a small MLP each).
"""
from __future__ import annotations

from typing import Sequence

import torch

from mtlv.errors import ConfigError
from mtlv.weighting.base import Weighting


class LabelMean(Weighting):
    def __init__(self, num_heads: int, head_sizes: Sequence[int] | None = None) -> None:
        super().__init__(num_heads, head_sizes)
        if self.head_sizes is None:
            raise ConfigError("weighting=labelmean needs the number of labels of each head: build it from a "
                              "model (MultiTaskModule passes head_sizes), or pass head_sizes=[...]")
        sizes = torch.tensor(self.head_sizes, dtype=torch.float32)
        # A device buffer, not a Python list: no host-to-device copy in every training step.
        self.register_buffer("weights", sizes / sizes.sum(), persistent=False)

    def forward(self, losses: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        return (losses * self.weights.to(losses.dtype)).sum()
