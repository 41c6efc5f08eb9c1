"""Multi-label metrics from per-label confusion counts (torchmetrics), with an explicit rule for
labels that have no positive example.

Why the rule: a label with no positive in the evaluated split has an undefined recall, so its F1
is undefined. scikit-learn silently scores it 0 (or 1, with zero_division=1); averaging that into
F1-macro moves the number by chance. MTLV reports such a label's F1 as NaN, averages F1-macro over
the labels with support, and reports how many labels were left out (`n_undefined`).
"""
from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import binary_stat_scores, multilabel_stat_scores


def confusion_counts(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(m, 5) tensor of tp, fp, tn, fn, support per label; preds and target are 0/1 (n, m)."""
    m = target.shape[1]
    if m == 1:  # torchmetrics' multilabel API needs at least two labels (an STL job has one)
        return binary_stat_scores(preds[:, 0].int(), target[:, 0].int(), threshold=0.5).unsqueeze(0)
    return multilabel_stat_scores(preds.int(), target.int(), num_labels=m, threshold=0.5, average="none")


def f1_from_counts(counts: torch.Tensor) -> dict[str, torch.Tensor]:
    tp, fp, _tn, fn, support = (counts[:, i].double() for i in range(5))
    defined = support > 0
    precision = torch.where(tp + fp > 0, tp / (tp + fp).clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(defined, tp / support.clamp(min=1), torch.full_like(tp, float("nan")))
    f1 = torch.where(defined, 2 * tp / (2 * tp + fp + fn).clamp(min=1), torch.full_like(tp, float("nan")))
    micro_den = 2 * tp.sum() + fp.sum() + fn.sum()
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
        "f1_macro": f1[defined].mean() if defined.any() else torch.tensor(float("nan")),
        "f1_micro": 2 * tp.sum() / micro_den if micro_den > 0 else torch.tensor(float("nan")),
        "n_undefined": (~defined).sum(),
    }


def constant_labels_note(always: list[str], never: list[str], part: str = "test") -> str | None:
    """What labels on every (`always`) or no (`never`) document of the scored `part` do to F1-macro, naming them;
    None when there are none. Neither is a sign of a good model: F1-macro moves with the data, not with it."""
    notes = []
    if always:
        notes.append(f"on every {part} document: {', '.join(always)}. Each one's F1 is 1.000 as soon as the model "
                     "predicts it for every document (there is no negative to get wrong), and it is averaged into "
                     "F1-macro like any other label, raising it")
    if never:
        notes.append(f"on no {part} document: {', '.join(never)}. Each one's F1 is undefined (no positive to find): "
                     "it is left out of F1-macro (counted in n_undefined), which then averages over fewer labels")
    return f"Label(s) {'; label(s) '.join(notes)}." if notes else None


def multilabel_metrics(
    probs: np.ndarray,
    targets: np.ndarray,
    threshold: float | np.ndarray,
    label_names: list[str],
    groups: list[list[int]] | None = None,
) -> dict:
    """Overall, per-label and per-group metrics at a decision threshold (scalar or per label)."""
    probs_t = torch.as_tensor(np.asarray(probs, dtype=np.float64))
    target_t = torch.as_tensor(np.asarray(targets)).int()
    preds = (probs_t >= torch.as_tensor(threshold, dtype=probs_t.dtype)).int()
    stats = f1_from_counts(confusion_counts(preds, target_t))
    out: dict = {
        "f1_macro": float(stats["f1_macro"]),
        "f1_micro": float(stats["f1_micro"]),
        "subset_accuracy": float((preds == target_t).all(dim=1).double().mean()) if len(preds) else float("nan"),
        "n_undefined": int(stats["n_undefined"]),
        "per_label": {
            name: {
                "precision": float(stats["precision"][i]),
                "recall": float(stats["recall"][i]),
                "f1": float(stats["f1"][i]),
                "support": int(stats["support"][i]),
            }
            for i, name in enumerate(label_names)
        },
    }
    if groups:
        out["per_group"] = []
        for cols in groups:
            g = f1_from_counts(confusion_counts(preds[:, cols], target_t[:, cols]))
            out["per_group"].append({"f1_macro": float(g["f1_macro"]), "f1_micro": float(g["f1_micro"])})
    return out


def flat_metrics(metrics: dict, prefix: str) -> dict[str, float]:
    """MLflow-ready flat dict: `<prefix>/f1_macro`, `<prefix>/f1/<label>`, `<prefix>/head<i>/f1_macro`.

    `<label>` is `tracking.label_key(name)`: the label name made valid (and kept distinct) for MLflow."""
    from mtlv.tracking import label_key

    flat = {f"{prefix}/{k}": float(metrics[k]) for k in ("f1_macro", "f1_micro", "subset_accuracy", "n_undefined")}
    for name, row in metrics["per_label"].items():
        if not np.isnan(row["f1"]):  # MLflow cannot plot NaN; an undefined F1 is simply not logged
            flat[f"{prefix}/f1/{label_key(name)}"] = row["f1"]
    for i, row in enumerate(metrics.get("per_group", [])):
        flat[f"{prefix}/head{i}/f1_macro"] = row["f1_macro"]
        flat[f"{prefix}/head{i}/f1_micro"] = row["f1_micro"]
    return {k: v for k, v in flat.items() if not np.isnan(v)}
