"""Equal weights, summed: each head's gradient at full strength (the reference code's loss)."""
from __future__ import annotations

import torch

from mtlv.weighting.base import Weighting


class Sum(Weighting):
    def forward(self, losses: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        return losses.sum()
