"""Task features from the labels themselves: how often two labels are assigned to the same document.

Computed on the training documents of the fold only, so the grouping never sees validation or test.
"""
from __future__ import annotations

import numpy as np

from mtlv.errors import ConfigError

MEASURES = ("jaccard", "npmi")


def cooccurrence_similarity(labels: np.ndarray, measure: str = "npmi") -> np.ndarray:
    """(m x m) similarity of the label columns of a binary (documents x labels) matrix.

    jaccard: |i and j| / |i or j|, in [0, 1] (0 when neither label occurs).
    npmi: normalised pointwise mutual information log(p_ij / (p_i p_j)) / -log(p_ij), in [-1, 1]:
    -1 never together, 0 independent, 1 always together (Bouma 2009). The diagonal is 1.
    """
    if measure not in MEASURES:
        raise ConfigError(f"clustering.measure={measure!r}: use one of {list(MEASURES)}")
    Y = np.asarray(labels, dtype=np.float64)
    if Y.ndim != 2 or len(Y) == 0:
        raise ConfigError(f"co-occurrence needs a non-empty (documents x labels) matrix, got shape {Y.shape}")
    n = len(Y)
    both = Y.T @ Y
    count = np.diag(both).copy()
    if measure == "jaccard":
        union = count[:, None] + count[None, :] - both
        S = np.divide(both, union, out=np.zeros_like(both), where=union > 0)
    else:
        p_ij, p_i = both / n, count / n
        with np.errstate(divide="ignore", invalid="ignore"):
            pmi = np.log(p_ij) - np.log(p_i[:, None]) - np.log(p_i[None, :])
            S = pmi / -np.log(p_ij)
        S[p_ij == 0] = -1.0            # never together
        S[np.isclose(p_ij, 1.0)] = 1.0  # both on every document (0/0 above)
    np.fill_diagonal(S, 1.0)
    return S


def similarity_to_distance(S: np.ndarray, measure: str) -> np.ndarray:
    """jaccard: 1 - S; npmi: (1 - S) / 2; both in [0, 1] with a zero diagonal."""
    D = 1.0 - S if measure == "jaccard" else (1.0 - S) / 2.0
    D = (D + D.T) / 2.0
    np.fill_diagonal(D, 0.0)
    return D
