"""The interface every loss weighting implements."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import torch
from torch import nn


class Weighting(nn.Module, ABC):
    """Per-head losses (and, for gradient-based methods, the shared features) -> one scalar loss.

    A weighting is an nn.Module so that learned weights (e.g. uncertainty's log-variances) are
    trained by the module's optimizer and saved in its checkpoints.
    """

    # Gradient-based weightings look at the gradients of each head's loss on the shared features.
    needs_features: bool = False

    def __init__(self, num_heads: int, head_sizes: Sequence[int] | None = None) -> None:
        super().__init__()
        if int(num_heads) < 1:
            raise ValueError(f"a weighting needs at least one head, got {num_heads}")
        self.num_heads = int(num_heads)
        # How many labels each head predicts (the model passes it): for weightings that weigh a head by
        # its size; None where a weighting is built without a model (e.g. in a test).
        if head_sizes is not None and len(head_sizes) != self.num_heads:
            raise ValueError(f"head_sizes needs one size per head ({self.num_heads}), got {list(head_sizes)}")
        self.head_sizes = None if head_sizes is None else tuple(int(n) for n in head_sizes)

    @abstractmethod
    def forward(self, losses: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """losses: shape (num_heads,); features: the shared representation the heads read."""
