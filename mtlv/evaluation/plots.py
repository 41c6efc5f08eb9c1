"""Per-run plots logged as artifacts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mtlv.io import atomic_path


def plot_per_label_f1(metrics: dict, path: str | Path, title: str = "") -> Path:
    """Horizontal bars of test F1 per label (undefined F1 shown as a gap), with support in the labels."""
    names = list(metrics["per_label"])
    f1 = [metrics["per_label"][n]["f1"] for n in names]
    support = [metrics["per_label"][n]["support"] for n in names]
    fig = Figure(figsize=(7, 0.32 * len(names) + 1.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    y = np.arange(len(names))
    ax.barh(y, np.nan_to_num(f1, nan=0.0), color="#4477aa")
    ax.set_yticks(y, [f"{n} (n={s})" for n, s in zip(names, support)], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.axvline(metrics["f1_macro"], color="#cc3311", linestyle="--", label=f"F1-macro {metrics['f1_macro']:.3f}")
    ax.set_xlabel("test F1")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return Path(path)
