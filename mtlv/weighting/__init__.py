"""Loss weightings: how a multi-head model turns its per-head losses into the one loss it trains on.

One class per file behind `Weighting` (the layout of LibMTL's `weighting/`), chosen with
`weighting=<name>` (conf/weighting/*.yaml, `_target_` + `_partial_`).
"""
from mtlv.weighting.base import Weighting
from mtlv.weighting.labelmean import LabelMean
from mtlv.weighting.mean import Mean
from mtlv.weighting.pcgrad import PCGrad
from mtlv.weighting.static import Static
from mtlv.weighting.sum import Sum
from mtlv.weighting.uncertainty import Uncertainty

__all__ = ["Weighting", "Sum", "Mean", "Static", "Uncertainty", "PCGrad", "LabelMean", "from_reduction", "reduction_of"]


def from_reduction(loss_reduction: str, head_weights, num_heads: int) -> Weighting:
    """The weighting behind the older `model.module.loss_reduction=sum|mean|weighted` (+ head_weights)."""
    if loss_reduction == "sum":
        return Sum(num_heads)
    if loss_reduction == "mean":
        return Mean(num_heads)
    return Static(num_heads, weights=head_weights)


def reduction_of(weighting: dict | None) -> tuple[str, list | None] | None:
    """`from_reduction`'s inverse: the `(loss_reduction, head_weights)` that trains exactly what this
    `weighting` config does (`weighting=sum` is `loss_reduction=sum`), or None when none does (uncertainty,
    PCGrad, extra options). Lets two spellings of one loss share one model key (mtlv/run/reuse.py)."""
    if not weighting or set(weighting) - {"_target_", "_partial_", "weights"}:
        return None
    from hydra.utils import get_class

    try:
        cls = get_class(str(weighting.get("_target_")))
    except Exception:  # noqa: BLE001 - not importable: not one of the reductions (the job reports it)
        return None
    weights = weighting.get("weights")
    if cls is Static:
        return ("weighted", [float(w) for w in weights]) if weights is not None else None
    if weights is None and cls in (Sum, Mean):
        return ("sum" if cls is Sum else "mean"), None
    return None
