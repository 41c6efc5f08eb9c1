"""Decision thresholds are chosen on the validation split and only then applied to test.

The reference study tuned the threshold on the test set itself, which leaks test labels into the
reported score; MTLV never looks at test labels to choose anything.
"""
from __future__ import annotations

import numpy as np

# eval.threshold: one threshold for all labels, or one per label (the checks read this list; the metrics, and
# torch with them, are imported where a threshold is chosen)
THRESHOLD_MODES = ("global", "per_label")
DEFAULT_GRID = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2).tolist())


def select_threshold(
    val_probs: np.ndarray,
    val_targets: np.ndarray,
    label_names: list[str],
    grid: tuple[float, ...] = DEFAULT_GRID,
    per_label: bool = False,
) -> float | np.ndarray:
    """Threshold maximising validation F1-macro (ties: the one closest to 0.5).

    `per_label=True` picks each label's threshold on its own validation F1 (labels without a
    validation positive keep 0.5).
    """
    from mtlv.evaluation.metrics import multilabel_metrics

    grid_arr = np.asarray(grid, dtype=np.float64)
    order = np.argsort(np.abs(grid_arr - 0.5), kind="stable")  # tie-break towards 0.5
    if not per_label:
        scores = [multilabel_metrics(val_probs, val_targets, float(t), label_names)["f1_macro"] for t in grid_arr]
        scores = np.nan_to_num(np.asarray(scores), nan=-1.0)
        best = max(order, key=lambda i: scores[i])
        return float(grid_arr[best])
    thresholds = np.full(len(label_names), 0.5)
    for j, name in enumerate(label_names):
        if val_targets[:, j].sum() == 0:
            continue
        f1 = [multilabel_metrics(val_probs[:, [j]], val_targets[:, [j]], float(t), [name])["f1_macro"] for t in grid_arr]
        thresholds[j] = grid_arr[max(order, key=lambda i: f1[i])]
    return thresholds
