"""Crafted label embeddings whose true grouping is known."""
from __future__ import annotations

import numpy as np
import pytest


def canonical(groups) -> list[list[int]]:
    return sorted((sorted(int(i) for i in g) for g in groups), key=lambda g: g[0])


@pytest.fixture()
def blobs() -> tuple[np.ndarray, list[list[int]]]:
    """16 labels in 3 well-separated Gaussian blobs (sizes 5, 7, 4), rows shuffled."""
    rng = np.random.default_rng(42)
    dim = 16
    centers = rng.normal(size=(3, dim)) * 10.0
    sizes = (5, 7, 4)
    truth = np.repeat(np.arange(3), sizes)
    X = np.vstack([centers[c] + rng.normal(scale=0.3, size=(n, dim)) for c, n in enumerate(sizes)])
    order = rng.permutation(len(X))
    X, truth = X[order], truth[order]
    expected = canonical([np.flatnonzero(truth == c) for c in range(3)])
    return X.astype(np.float32), expected
