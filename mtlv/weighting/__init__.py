"""Loss weightings: how a multi-head model turns its per-head losses into the one loss it trains on.

One class per file behind `Weighting` (the layout of LibMTL's `weighting/`), chosen with
`weighting=<name>` (conf/weighting/*.yaml, `_target_` + `_partial_`).
"""
from mtlv.weighting.base import Weighting
from mtlv.weighting.mean import Mean
from mtlv.weighting.pcgrad import PCGrad
from mtlv.weighting.static import Static
from mtlv.weighting.sum import Sum
from mtlv.weighting.uncertainty import Uncertainty

__all__ = ["Weighting", "Sum", "Mean", "Static", "Uncertainty", "PCGrad", "from_reduction"]


def from_reduction(loss_reduction: str, head_weights, num_heads: int) -> Weighting:
    """The weighting behind the older `model.module.loss_reduction=sum|mean|weighted` (+ head_weights)."""
    if loss_reduction == "sum":
        return Sum(num_heads)
    if loss_reduction == "mean":
        return Mean(num_heads)
    return Static(num_heads, weights=head_weights)
