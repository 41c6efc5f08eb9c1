"""One dropout + linear (or small MLP) head per task group, over a shared sentence representation."""
from __future__ import annotations

import torch
from torch import nn

from mtlv.models.options import POOLINGS


class GroupedHeads(nn.Module):
    """Head i predicts the labels `groups[i]` (column indices of the job's label matrix).

    The output is one logit matrix in label order, so the loss and metrics need not know about groups.
    """

    def __init__(self, hidden_size: int, groups: list[list[int]], dropout: float = 0.1,
                 hidden: int | None = None) -> None:
        super().__init__()
        self.groups = [list(map(int, g)) for g in groups]
        self.num_labels = sum(len(g) for g in self.groups)
        self.heads = nn.ModuleList(head(hidden_size, len(g), dropout, hidden) for g in self.groups)
        self.register_buffer("order", torch.tensor([c for g in self.groups for c in g]), persistent=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        stacked = torch.cat([head(features) for head in self.heads], dim=-1)
        logits = torch.empty_like(stacked)
        logits[:, self.order] = stacked
        return logits


def head(in_size: int, out_size: int, dropout: float, hidden: int | None = None) -> nn.Sequential:
    """Linear (hidden=None, the reference) or a small MLP with one hidden layer of `hidden` units:
    a deeper head gives each task group capacity of its own on top of the shared encoder."""
    if not hidden:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_size, out_size))
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_size, int(hidden)), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(int(hidden), out_size))


def pool(outputs, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Sentence representation: `cls` ([CLS] of the last layer), `pooler` (BERT's pooler output,
    as the reference code used) or `mean` (attention-masked mean of the last layer)."""
    hidden = outputs.last_hidden_state
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "pooler":
        if getattr(outputs, "pooler_output", None) is None:
            raise ValueError("model.pooling=pooler, but this encoder has no pooler output; use cls or mean")
        return outputs.pooler_output
    if pooling == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    raise ValueError(f"model.pooling={pooling!r}: use one of {', '.join(POOLINGS)}")
