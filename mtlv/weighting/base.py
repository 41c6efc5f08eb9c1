"""The interface every loss weighting implements."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn


class Weighting(nn.Module, ABC):
    """Per-head losses (and, for gradient-based methods, the shared features) -> one scalar loss.

    A weighting is an nn.Module so that learned weights (e.g. uncertainty's log-variances) are
    trained by the module's optimizer and saved in its checkpoints.
    """

    # Gradient-based weightings look at the gradients of each head's loss on the shared features.
    needs_features: bool = False

    def __init__(self, num_heads: int) -> None:
        super().__init__()
        if int(num_heads) < 1:
            raise ValueError(f"a weighting needs at least one head, got {num_heads}")
        self.num_heads = int(num_heads)

    @abstractmethod
    def forward(self, losses: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """losses: shape (num_heads,); features: the shared representation the heads read."""
