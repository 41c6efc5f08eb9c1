"""One evaluation rule for every architecture: threshold from validation, metrics on test."""
from __future__ import annotations

import numpy as np

from mtlv.evaluation.metrics import multilabel_metrics
from mtlv.evaluation.predictions import Predictions
from mtlv.evaluation.thresholds import THRESHOLD_MODES, select_threshold


def evaluate(val: Predictions, test: Predictions, groups: list[list[int]] | None = None,
             threshold_mode: str = "global") -> dict:
    if threshold_mode not in THRESHOLD_MODES:
        raise ValueError(f"eval.threshold={threshold_mode!r}: use one of {', '.join(THRESHOLD_MODES)}")
    threshold = select_threshold(val.probs, val.targets, val.label_names, per_label=threshold_mode == "per_label")
    names = test.label_names
    return {
        "threshold": threshold.tolist() if isinstance(threshold, np.ndarray) else threshold,
        "val": multilabel_metrics(val.probs, val.targets, threshold, names, groups),
        "test": multilabel_metrics(test.probs, test.targets, threshold, names, groups),
        "test_at_0.5": multilabel_metrics(test.probs, test.targets, 0.5, names, groups),
    }
