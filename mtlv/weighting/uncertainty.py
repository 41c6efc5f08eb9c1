"""Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018): each head learns its own loss scale.

loss = sum_i exp(-s_i) * L_i + s_i, with s_i = log(sigma_i^2) a trained parameter (init 0, so the
first steps equal `sum`). A noisy head (high loss) earns a larger s_i and thus a smaller weight; the
+ s_i term keeps the weights from collapsing to zero.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mtlv.weighting.base import Weighting


class Uncertainty(Weighting):
    def __init__(self, num_heads: int, init: float = 0.0, head_sizes: Sequence[int] | None = None) -> None:
        super().__init__(num_heads, head_sizes)
        self.log_vars = nn.Parameter(torch.full((self.num_heads,), float(init)))

    def forward(self, losses: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        s = self.log_vars.to(losses.dtype)
        return (torch.exp(-s) * losses + s).sum()
