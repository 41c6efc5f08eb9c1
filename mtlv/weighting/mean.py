"""Equal weights, averaged: the loss scale does not grow with the number of heads."""
from __future__ import annotations

import torch

from mtlv.weighting.base import Weighting


class Mean(Weighting):
    def forward(self, losses: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        return losses.mean()
