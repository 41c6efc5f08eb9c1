"""Heads weighted by their share of the labels, so that the loss is the mean over all labels: MTL's loss.

A head's loss is the mean binary cross-entropy over its labels. Summing the heads (the reference's GMHL
loss, `sum`) gives a label that sits alone in its head the weight of a whole 15-label head, so the shared
encoder learns mostly for the few labels in small groups; averaging the heads (`mean`) keeps those
proportions. Weighting head i by n_i / sum(n) makes every label count the same, as in MTL's one head: GMHL
then differs from MTL only in its heads (one per group; with `model.module.head_hidden`, a small MLP each).
"""
from __future__ import annotations

from typing import Sequence

from mtlv.errors import ConfigError
from mtlv.weighting.static import Static


class LabelMean(Static):
    """Static weights n_i / sum(n), computed from the heads' sizes instead of given."""

    def __init__(self, num_heads: int, head_sizes: Sequence[int] | None = None) -> None:
        if head_sizes is None:
            raise ConfigError("weighting=labelmean needs the number of labels of each head: build it from a "
                              "model (MultiTaskModule passes head_sizes), or pass head_sizes=[...]")
        total = float(sum(head_sizes))
        super().__init__(num_heads, weights=[n / total for n in head_sizes], head_sizes=head_sizes)
