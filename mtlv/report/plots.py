"""Report figures (PNG, matplotlib Agg without pyplot, so it runs headless): elbow curves, per-label F1
bars (GMTL vs MTL), wall-clock bars and F1-macro vs epoch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mtlv.io import atomic_path


def _new_figure(size: tuple[float, float]) -> Figure:
    # A bare Figure on an Agg canvas never enters pyplot's global registry: headless and leak-free.
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def _plain(text: object) -> str:
    """`text` (a label name) drawn as written: matplotlib reads text between two `$` as math, where a name such
    as `$\\alpha$ costs $5` changes and an unknown `\\macro` aborts the report."""
    return str(text).replace("$", r"\$")


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return Path(path)


def elbow_plot(curves: dict[tuple[str, str], list[tuple[int, float]]], ks_used: list[int], path: Path,
               title: str) -> Path | None:
    """One line per (model, feature); the k values of the grid shaded."""
    if not curves:
        return None
    fig = _new_figure((6.5, 4.2))
    ax = fig.add_subplot()
    for (model, feature), points in sorted(curves.items()):
        ks, costs = zip(*points)
        costs = np.asarray(costs, dtype=float)
        scale = costs.max() if costs.max() > 0 else 1.0  # encoders differ in scale: compare the shapes
        ax.plot(ks, costs / scale, marker="o", label=f"{model}, {feature}")
    for k in ks_used:
        ax.axvline(k, color="grey", alpha=0.25, linewidth=6)
    ax.set_xlabel("k (number of task groups)")
    ax.set_ylabel("sum of distances to medoids (÷ its maximum)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    return _save(fig, path)


def label_bars(raw: pd.DataFrame, model: str, path: Path, title: str) -> Path | None:
    """Grouped horizontal bars: GMTL and MTL test F1 per label, with std whiskers (table 4's numbers)."""
    cols = [f"gmtl_{model}_mean", f"mtl_{model}_mean"]
    if not set(cols) <= set(raw.columns) or raw[cols].isna().all().all():
        return None
    labels = list(raw.label)
    y = np.arange(len(labels))
    fig = _new_figure((7.0, 0.32 * len(labels) + 1.5))
    ax = fig.add_subplot()
    for offset, arch, colour in ((-0.2, "gmtl", "tab:orange"), (0.2, "mtl", "tab:blue")):
        mean, std = raw[f"{arch}_{model}_mean"].to_numpy(float), raw[f"{arch}_{model}_std"].to_numpy(float)
        ax.barh(y + offset, np.nan_to_num(mean), height=0.4, xerr=np.nan_to_num(std), color=colour,
                label=arch.upper(), error_kw={"elinewidth": 0.8})
    ax.set_yticks(y, [_plain(label) for label in labels], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("test F1")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def time_bars(raw: pd.DataFrame, path: Path, title: str) -> Path | None:
    """Wall-clock seconds per architecture, one bar group per model (table 5's numbers, log scale)."""
    rows = raw[raw.arch != "stl/gmtl"].dropna(subset=["wall_mean_s"])
    if rows.empty:
        return None
    archs, models = list(dict.fromkeys(rows.arch)), list(dict.fromkeys(rows.model))
    width = 0.8 / len(models)
    fig = _new_figure((max(5.0, 1.1 * len(archs) + 2), 4.0))
    ax = fig.add_subplot()
    x = np.arange(len(archs))
    for i, model in enumerate(models):
        sub = rows[rows.model == model].set_index("arch").reindex(archs)
        ax.bar(x + (i - (len(models) - 1) / 2) * width, sub.wall_mean_s.to_numpy(float), width,
               yerr=np.nan_to_num(sub.wall_std_s.to_numpy(float)), label="classical" if model == "-" else model)
    ax.set_xticks(x, archs, rotation=20, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("wall-clock per result (s)")
    ax.set_title(title)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


ARCH_COLOURS = {"stl": "tab:green", "mtl": "tab:blue", "gmhl": "tab:purple", "gmtl": "tab:orange"}


def epoch_curves(means: pd.DataFrame, model: str, path: Path, title: str) -> Path | None:
    """F1-macro vs epoch per architecture: test solid (± std band), validation dashed (curves.mean_curves)."""
    rows = means[means.model == model]
    if rows.empty:
        return None
    fig = _new_figure((6.5, 4.2))
    ax = fig.add_subplot()
    for arch in [a for a in ARCH_COLOURS if a in set(rows.arch)]:
        sub = rows[rows.arch == arch].sort_values("epoch")
        colour = ARCH_COLOURS[arch]
        ax.plot(sub.epoch, sub.test_mean, marker="o", color=colour, label=f"{arch.upper()} test")
        band = np.nan_to_num(sub.test_std.to_numpy(float))
        ax.fill_between(sub.epoch, sub.test_mean - band, sub.test_mean + band, color=colour, alpha=0.12)
        ax.plot(sub.epoch, sub.val_mean, linestyle="--", color=colour, alpha=0.7, label=f"{arch.upper()} val")
    ax.set_xlabel("epoch")
    ax.set_ylabel("F1-macro (threshold 0.5)")
    ax.set_title(title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False, ncol=2)
    return _save(fig, path)


def cost_plot(raw: pd.DataFrame, path: Path, title: str) -> Path | None:
    """Test F1-macro against compute per result (log x) per setting (table 7's numbers), the Pareto frontier
    drawn as a step line and its settings labelled."""
    fig = cost_figure(raw, title)
    return _save(fig, path) if fig is not None else None


def cost_figure(raw: pd.DataFrame, title: str) -> Figure | None:
    """`cost_plot`'s figure. Its legend sits right of the axes, outside them: inside, any corner can hide
    points (with eight settings the best results sat under it); `_save`'s bbox_inches="tight" keeps it."""
    rows = raw[np.isfinite(raw.compute_s.astype(float)) & np.isfinite(raw.f1_macro.astype(float))]
    if rows.empty:
        return None
    fig = _new_figure((7.5, 4.8))
    ax = fig.add_subplot()
    for arch, group in rows.groupby(rows.arch.where(~rows.baseline, "baseline"), sort=False):
        ax.scatter(group.compute_s, group.f1_macro, s=28, color=ARCH_COLOURS.get(arch, "tab:grey"),
                   label=arch.upper() if arch in ARCH_COLOURS else "classical", alpha=0.85, zorder=3)
    front = rows[rows.pareto].sort_values("compute_s")
    ax.step(front.compute_s, front.f1_macro, where="post", color="black", linewidth=1, alpha=0.7,
            label="Pareto frontier", zorder=2)
    for _, row in front.iterrows():
        ax.annotate(row["name"], (row.compute_s, row.f1_macro), textcoords="offset points", xytext=(4, 4),
                    fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("compute per result: the jobs' seconds added up (log scale)")
    ax.set_ylabel("test F1-macro (mean over samples)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return fig


def gains_heatmap(matrix: pd.DataFrame, path: Path, title: str) -> Path | None:
    """Labels (rows) x architectures (columns): mean test F1 difference to STL in points, red = loss,
    blue = gain, the value written in each cell when the grid is small enough to read."""
    values = matrix.to_numpy(dtype=float) * 100
    if not np.isfinite(values).any():
        return None
    limit = max(float(np.nanmax(np.abs(values))), 0.5)
    fig = _new_figure((1.3 * matrix.shape[1] + 3.5, 0.3 * matrix.shape[0] + 1.6))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(matrix.shape[1]), list(matrix.columns), rotation=25, ha="right", fontsize=7)
    ax.set_yticks(range(matrix.shape[0]), [_plain(label) for label in matrix.index], fontsize=7)
    if values.size <= 600:
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=6,
                        color="white" if abs(v) > 0.6 * limit else "black")  # readable on the dark ends
    fig.colorbar(image, ax=ax, label="test F1 − STL (points)")
    ax.set_title(title)
    return _save(fig, path)
