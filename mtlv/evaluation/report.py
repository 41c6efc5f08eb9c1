"""Human-readable outputs of an evaluation: per-label classification report and a metrics table."""
from __future__ import annotations

import numpy as np
import pandas as pd


def classification_report(metrics: dict) -> pd.DataFrame:
    """Per-label precision/recall/F1/support plus macro and micro rows (undefined F1 shown as NaN)."""
    rows = [{"label": name, **vals} for name, vals in metrics["per_label"].items()]
    frame = pd.DataFrame(rows)
    summary = pd.DataFrame([
        {"label": "macro avg (labels with support)", "f1": metrics["f1_macro"], "support": frame["support"].sum()},
        {"label": "micro avg", "f1": metrics["f1_micro"], "support": frame["support"].sum()},
        {"label": "subset accuracy", "f1": metrics["subset_accuracy"], "support": np.nan},
    ])
    return pd.concat([frame, summary], ignore_index=True)


def metrics_table(results: dict[str, dict]) -> str:
    """A small aligned table: rows = evaluation name (e.g. 'test @ val threshold'), columns = metrics."""
    header = f"{'':28s} {'F1-macro':>9s} {'F1-micro':>9s} {'subset acc':>10s}"
    lines = [header, "-" * len(header)]
    for name, m in results.items():
        lines.append(f"{name:28s} {m['f1_macro']:9.4f} {m['f1_micro']:9.4f} {m['subset_accuracy']:10.4f}")
    return "\n".join(lines)
