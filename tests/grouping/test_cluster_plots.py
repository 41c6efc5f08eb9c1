from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mtlv.grouping.kmedoids import elbow, fit_kmedoids
from mtlv.grouping.plots import plot_elbow, plot_label_map

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


def test_plot_elbow_writes_png(tmp_path, blobs):
    X, _ = blobs
    out = plot_elbow(elbow(X, k_max=8), tmp_path / "figs" / "elbow.png", chosen_k=3, title="blobs")
    assert out == tmp_path / "figs" / "elbow.png" and _is_png(out)
    assert [p.name for p in out.parent.iterdir()] == ["elbow.png"]  # no temp file left behind
    assert _is_png(plot_elbow([(1, 2.0)], tmp_path / "one.png"))


def test_plot_label_map_writes_png(tmp_path, blobs):
    X, _ = blobs
    assignment, _, _ = fit_kmedoids(X, 3)
    names = [f"a rather long label name number {i}" for i in range(len(X))]
    out = plot_label_map(X, assignment, names, tmp_path / "map.png", title="label map")
    assert _is_png(out)


@pytest.mark.parametrize("X", [np.ones((1, 5)), np.array([[0.0, 1.0], [1.0, 0.0]]), np.ones((3, 4)),
                               np.array([[0.0], [1.0], [3.0]])])
def test_plot_label_map_degenerate_inputs(tmp_path, X):
    out = plot_label_map(X, np.arange(len(X)), [f"l{i}" for i in range(len(X))], tmp_path / "m.png")
    assert _is_png(out)


def test_plot_label_map_rejects_mismatch(tmp_path):
    with pytest.raises(ValueError, match="must match"):
        plot_label_map(np.ones((3, 2)), np.zeros(3), ["a", "b"], tmp_path / "m.png")
