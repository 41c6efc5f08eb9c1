"""PCGrad (Yu et al., NeurIPS 2020) on the shared representation, with torchjd's PCGrad weighting.

Each head's gradient is projected off the gradients it conflicts with (negative dot product) before
they are summed. torchjd computes this as weights w on the heads' gradients from their Gram matrix,
so the loss sum_i w_i L_i (w held constant) has exactly the PCGrad gradient on the features the heads
share; the encoder receives it through the chain rule (the representation-level variant of
MGDA-UB, Sener & Koltun 2018: one extra backward through the small heads only, not the encoder).
Without conflicts all weights are 1, i.e. plain `sum`.
"""
from __future__ import annotations

from typing import Sequence

import torch

from mtlv.weighting.base import Weighting


class PCGrad(Weighting):
    needs_features = True

    def __init__(self, num_heads: int, head_sizes: Sequence[int] | None = None) -> None:
        super().__init__(num_heads, head_sizes)
        from torchjd.aggregation import PCGradWeighting

        self.weighting = PCGradWeighting()
        self.last_weights: torch.Tensor | None = None

    def head_weights(self, losses: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        if len(losses) == 1 or not losses.requires_grad:  # one head, or validation: nothing to project
            return torch.ones_like(losses)
        grads = [torch.autograd.grad(loss, features, retain_graph=True)[0].reshape(-1) for loss in losses]
        jacobian = torch.stack(grads).float()
        return self.weighting(jacobian @ jacobian.T).to(losses.dtype).detach()

    def forward(self, losses: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        if features is None:  # validation: no gradients to project, so the plain sum
            return losses.sum()
        weights = self.head_weights(losses, features)
        self.last_weights = weights
        return (weights * losses).sum()
