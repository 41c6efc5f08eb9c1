"""Fixed weights, one per head, chosen by the user (`weighting.weights=[...]`)."""
from __future__ import annotations

from typing import Sequence

import torch

from mtlv.errors import ConfigError
from mtlv.weighting.base import Weighting


class Static(Weighting):
    def __init__(self, num_heads: int, weights: Sequence[float] | None = None,
                 head_sizes: Sequence[int] | None = None) -> None:
        super().__init__(num_heads, head_sizes)
        if weights is None or len(weights) != self.num_heads:
            raise ConfigError(f"static loss weights need one weight per head ({self.num_heads} heads), got "
                              f"{None if weights is None else list(weights)}: set weighting.weights=[...] "
                              "(or model.module.head_weights with model.module.loss_reduction=weighted)")
        # A device buffer, not a Python list: no host-to-device copy in every training step.
        self.register_buffer("weights", torch.tensor([float(w) for w in weights]), persistent=False)

    def forward(self, losses: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        return (losses * self.weights.to(losses.dtype)).sum()
