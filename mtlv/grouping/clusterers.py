"""Clusterers: label features (one row per label) + k -> a group id per label.

Every clusterer sees the same euclidean geometry of the feature rows, so `clustering.algorithm`
changes only how the groups are cut, never what "close" means.
"""
from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Callable

import numpy as np

from mtlv.errors import ConfigError


class Clusterer(ABC):
    @abstractmethod
    def fit(self, X: np.ndarray, k: int) -> tuple[np.ndarray, float]:
        """(group id 0..k-1 per row of X, sum of distances to the group medoids)."""


class KMedoids(Clusterer):
    """PAM k-medoids (the reference study's algorithm), through MTLV's k-medoids module."""

    def __init__(self, seed: int = 0, backend: str = "kmedoids") -> None:
        self.seed, self.backend = int(seed), backend

    def fit(self, X: np.ndarray, k: int) -> np.ndarray:
        from mtlv.grouping.kmedoids import fit_kmedoids

        assignment, _, cost = fit_kmedoids(X, int(k), seed=self.seed, backend=self.backend)
        return assignment, cost


# scikit-learn's AgglomerativeClustering linkages (all work on the euclidean feature rows MTLV clusters)
LINKAGES = ("average", "complete", "single", "ward")


class Agglomerative(Clusterer):
    """scikit-learn's bottom-up hierarchical clustering; `linkage` says how clusters are compared."""

    def __init__(self, linkage: str = "average") -> None:
        if linkage not in LINKAGES:
            raise ConfigError(f"clustering.linkage={linkage!r}: use one of {', '.join(LINKAGES)}")
        self.linkage = linkage

    def fit(self, X: np.ndarray, k: int) -> tuple[np.ndarray, float]:
        from sklearn.cluster import AgglomerativeClustering

        X = np.asarray(X, dtype=np.float64)
        if int(k) == len(X):  # sklearn wants fewer clusters than rows; one label per group is trivial
            return np.arange(len(X)), 0.0
        with warnings.catch_warnings():
            # Profile features (a label's row of a distance matrix) are square, symmetric and zero on the
            # diagonal, which scipy mistakes for a distance matrix; they are observations here.
            warnings.filterwarnings("ignore", message=".*uncondensed distance matrix.*")
            model = AgglomerativeClustering(n_clusters=int(k), linkage=self.linkage)
            assignment = model.fit_predict(X).astype(np.int64)
        return assignment, medoid_cost(X, assignment)


# The clusterers `clustering.algorithm` chooses from (the checks read this too): each made from the clustering
# options it takes (seed, backend, linkage).
ALGORITHMS: dict[str, Callable[[int, str, str], Clusterer]] = {
    "kmedoids": lambda seed, backend, linkage: KMedoids(seed=seed, backend=backend),
    "agglomerative": lambda seed, backend, linkage: Agglomerative(linkage=linkage),
}


def make_clusterer(algorithm: str, seed: int = 0, backend: str = "kmedoids", linkage: str = "average") -> Clusterer:
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"clustering.algorithm={algorithm!r} is not known; use one of {list(ALGORITHMS)}")
    return ALGORITHMS[algorithm](seed, backend, linkage)


def medoid_cost(X: np.ndarray, assignment: np.ndarray) -> float:
    """Sum over groups of the distances from each member to the group's medoid (the k-medoids
    objective), so elbow curves of different clusterers are on one scale."""
    from sklearn.metrics import pairwise_distances

    D = pairwise_distances(np.asarray(X, dtype=np.float64))
    total = 0.0
    for c in np.unique(assignment):
        rows = np.flatnonzero(assignment == c)
        total += float(D[np.ix_(rows, rows)].sum(axis=0).min())
    return total


def as_groups(assignment: np.ndarray) -> list[list[int]]:
    """Row indices per group: each group sorted, groups ordered by their smallest index."""
    assignment = np.asarray(assignment)
    groups = [sorted(np.flatnonzero(assignment == c).tolist()) for c in np.unique(assignment)]
    return sorted((g for g in groups if g), key=lambda g: g[0])
