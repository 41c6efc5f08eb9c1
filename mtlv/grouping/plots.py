"""Figures for choosing k and for seeing which labels were grouped together."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mtlv.io import atomic_path

log = logging.getLogger(__name__)


def _new_figure(size: tuple[float, float]) -> Figure:
    # A bare Figure on an Agg canvas never enters pyplot's global registry, so plotting works in
    # headless jobs and worker threads, and nothing leaks when many runs draw figures.
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    finally:
        fig.clear()
    log.info("wrote %s", path)
    return path


def plot_elbow(curve: list[tuple[int, float]], path: str | Path, chosen_k: int | None = None, title: str = "",
               note: str = "") -> Path:
    """Sum of distances to the medoids against k, with the chosen k marked."""
    ks = [int(k) for k, _ in curve]
    costs = [float(c) for _, c in curve]
    fig = _new_figure((5.5, 3.8))
    ax = fig.add_subplot()
    ax.plot(ks, costs, marker="o", color="tab:blue")
    if chosen_k is not None:
        why = f"\n({note})" if note and note != "set by clustering.k" else ""
        ax.axvline(chosen_k, linestyle="--", color="tab:red", label=f"chosen k = {chosen_k}{why}")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xticks(ks if len(ks) <= 25 else ks[:: max(1, len(ks) // 20)])
    ax.set_xlabel("k (number of task groups)")
    ax.set_ylabel("sum of distances to medoid")
    ax.set_title(title or "k-medoids elbow")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_matrix(S: np.ndarray, label_names: list[str], path: str | Path, title: str = "") -> Path:
    """A label x label similarity (co-occurrence or affinity) as a heat map."""
    S = np.asarray(S, dtype=np.float64)
    size = 3.0 + 0.35 * len(S)
    fig = _new_figure((size + 1.0, size))
    ax = fig.add_subplot()
    image = ax.imshow(S, cmap="viridis")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    names = [_shorten(n, 16) for n in label_names]
    ax.set_xticks(range(len(S)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(S)), names, fontsize=7)
    ax.set_title(title or "task similarity")
    return _save(fig, path)


def _shorten(name: str, width: int = 20) -> str:
    name = str(name)
    return name if len(name) <= width else name[: width - 1] + "…"


def _project_2d(X: np.ndarray) -> tuple[np.ndarray, str, str]:
    from sklearn.decomposition import PCA

    X = np.asarray(X, dtype=np.float64)
    n_comp = min(2, X.shape[0], X.shape[1])
    if n_comp < 1 or np.allclose(X, X[0]):
        # PCA is undefined for one label or identical embeddings; everything sits at the origin.
        return np.zeros((len(X), 2)), "PC1", "PC2"
    pca = PCA(n_components=n_comp, svd_solver="full", random_state=0)
    coords = pca.fit_transform(X)
    ratio = pca.explained_variance_ratio_
    if n_comp == 1:
        coords = np.column_stack([coords, np.zeros(len(X))])
        ratio = np.append(ratio, 0.0)
    return coords, f"PC1 ({ratio[0]:.0%} of variance)", f"PC2 ({ratio[1]:.0%} of variance)"


def plot_label_map(X: np.ndarray, assignment: np.ndarray, label_names: list[str], path: str | Path,
                   title: str = "") -> Path:
    """Label embeddings in the plane of their first two principal components, coloured by group."""
    assignment = np.asarray(assignment)
    if len(assignment) != len(X) or len(label_names) != len(X):
        raise ValueError(f"plot_label_map: {len(X)} rows, {len(assignment)} assignments and "
                         f"{len(label_names)} label names must match")
    coords, xlabel, ylabel = _project_2d(X)
    clusters = sorted(set(assignment.tolist()))
    cmap = _colours(len(clusters))
    fig = _new_figure((7.5, 6.0))
    ax = fig.add_subplot()
    for i, c in enumerate(clusters):
        rows = assignment == c
        ax.scatter(coords[rows, 0], coords[rows, 1], s=40, color=cmap[i], label=f"group {i}",
                   edgecolors="black", linewidths=0.4)
    for (x, y), name in zip(coords, label_names):
        ax.annotate(_shorten(name), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
    if len(clusters) <= 20:
        ax.legend(loc="best", fontsize=7, frameon=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"labels by task group (k = {len(clusters)})")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
