"""k-medoids over label embeddings: which tasks belong together.

The default backend is MTLV's own exact PAM (BUILD + SWAP, Kaufman & Rousseeuw), MIT like MTLV: the
tens to hundreds of labels MTLV clusters take milliseconds. `backend=kmedoids` uses the
python-kmedoids package instead (GPL-3.0, an optional extra: `pip install mtlv[gpl]`), and
`backend=sklearn_extra` scikit-learn-extra (BSD-3, numpy<2 only). The library sits behind
`fit_kmedoids` alone, so swapping it touches one function.
"""
from __future__ import annotations

import logging

import numpy as np
from sklearn.metrics import pairwise_distances

from mtlv.errors import ConfigError

log = logging.getLogger(__name__)

BACKENDS = ("pam", "kmedoids", "sklearn_extra")
# Classic PAM (best swap per step) is O(k (m-k)^2) per iteration: instant for the tens to hundreds
# of labels MTLV sees. Beyond this, the kmedoids backend switches to FasterPAM's O(m^2) eager swaps.
_PAM_MAX_ROWS = 1000


def _check_matrix(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ConfigError(f"clustering needs a non-empty (labels x features) matrix, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ConfigError("clustering: the label features contain NaN or infinite values")
    return X


def _check_k(k: int, m: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= m:
        raise ConfigError(
            f"clustering.k={k!r} is invalid for {m} labels: use an integer from 1 to {m} "
            f"(1 = one group with every label, {m} = one group per label)"
        )
    return int(k)


def pam(D: np.ndarray, k: int, max_iter: int = 100) -> np.ndarray:
    """Exact PAM on a distance matrix: greedy BUILD, then the best single swap while it lowers the
    cost. Deterministic (ties go to the lowest index); returns the k medoid rows."""
    D = np.asarray(D, dtype=np.float64)
    m = len(D)
    medoids = [int(D.sum(axis=1).argmin())]
    nearest = D[:, medoids[0]].copy()
    for _ in range(1, k):  # BUILD: add the row that lowers the total distance most
        gain = np.maximum(nearest[:, None] - D, 0.0).sum(axis=0)
        gain[medoids] = -1.0
        medoids.append(int(gain.argmax()))
        nearest = np.minimum(nearest, D[:, medoids[-1]])
    medoids_arr = np.asarray(medoids, dtype=np.int64)
    tol = 1e-12 * max(float(D.max()), 1.0) * m
    for _ in range(max_iter):  # SWAP: the best (medoid, non-medoid) exchange, if it helps
        to_medoids = D[:, medoids_arr]
        order = np.argsort(to_medoids, axis=1, kind="stable")
        near_slot = order[:, 0]
        d1 = to_medoids[np.arange(m), near_slot]
        d2 = to_medoids[np.arange(m), order[:, 1]] if k > 1 else np.full(m, np.inf)
        keep_near, keep_second = np.minimum(d1[:, None], D), np.minimum(d2[:, None], D)
        totals = np.empty((k, m))
        for slot in range(k):
            lost = near_slot == slot  # rows whose medoid leaves go to their second medoid or to j
            totals[slot] = keep_near[~lost].sum(axis=0) + keep_second[lost].sum(axis=0)
        totals[:, medoids_arr] = np.inf
        best = totals.min()
        if not best < d1.sum() - tol:
            break
        # Swaps within rounding of the best are ties: the lowest candidate row, then slot, wins.
        slots, rows = np.nonzero(totals <= best + tol)
        pick = np.lexsort((slots, rows))[0]
        medoids_arr[slots[pick]] = rows[pick]
    return medoids_arr


def _medoids_kmedoids(D: np.ndarray, k: int, seed: int) -> np.ndarray:
    try:
        import kmedoids
    except ImportError as err:
        raise ConfigError(
            "clustering.backend=kmedoids needs the package 'kmedoids' (GPL-3.0): pip install 'mtlv[gpl]' "
            "or pip install kmedoids. Otherwise use clustering.backend=pam (the default, MIT)."
        ) from err

    # BUILD initialisation is greedy and seed-free, so results are deterministic and, in practice,
    # the cost never rises with k (a clean elbow curve); the seed only matters for ties in FasterPAM.
    if len(D) <= _PAM_MAX_ROWS:
        result = kmedoids.pam(D, k, init="build", max_iter=100, random_state=seed)
    else:
        result = kmedoids.fasterpam(D, k, init="build", max_iter=100, random_state=seed, n_cpu=1)
    return np.asarray(result.medoids, dtype=np.int64)


def _medoids_sklearn_extra(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    try:
        from sklearn_extra.cluster import KMedoids
    except ImportError as err:
        raise ConfigError(
            "clustering.backend=sklearn_extra needs the package 'scikit-learn-extra' "
            "(pip install scikit-learn-extra); it is built against numpy<2, so it only works in an "
            "environment with numpy<2. Otherwise use clustering.backend=pam (the default)."
        ) from err
    model = KMedoids(n_clusters=k, metric="euclidean", method="pam", init="build", random_state=seed).fit(X)
    return np.asarray(model.medoid_indices_, dtype=np.int64)


def fit_kmedoids(X: np.ndarray, k: int, seed: int = 0, backend: str = "pam") -> tuple[np.ndarray, np.ndarray, float]:
    """(cluster per row, medoid row per cluster, sum of euclidean distances to the assigned medoid)."""
    X = _check_matrix(X)
    k = _check_k(k, len(X))
    if backend not in BACKENDS:
        raise ConfigError(f"clustering.backend='{backend}' is not known; use one of {list(BACKENDS)}")
    D = pairwise_distances(X, metric="euclidean")
    if backend == "pam":
        medoids = pam(D, k)
    elif backend == "kmedoids":
        medoids = _medoids_kmedoids(D, k, seed)
    else:
        medoids = _medoids_sklearn_extra(X, k, seed)
    medoids = list(dict.fromkeys(int(i) for i in medoids))
    if len(medoids) < k:
        # Duplicate rows (e.g. two labels with the same description) can leave PAM with fewer
        # distinct medoids than asked for; extra zero-cost medoids restore exactly k groups.
        medoids += [i for i in range(len(X)) if i not in set(medoids)][: k - len(medoids)]
    medoids = np.asarray(medoids, dtype=np.int64)
    assignment = D[:, medoids].argmin(axis=1)
    # A medoid tied with another (identical rows) must still head its own cluster.
    assignment[medoids] = np.arange(k)
    cost = float(D[np.arange(len(X)), medoids[assignment]].sum())
    return assignment.astype(np.int64), medoids, cost


def cluster_groups(X: np.ndarray, k: int, seed: int = 0, backend: str = "pam") -> list[list[int]]:
    """Row indices per group: each group sorted, groups ordered by their smallest index."""
    assignment, _, cost = fit_kmedoids(X, k, seed=seed, backend=backend)
    groups = [sorted(np.flatnonzero(assignment == c).tolist()) for c in range(k)]
    groups = sorted((g for g in groups if g), key=lambda g: g[0])
    log.info("k-medoids (k=%d, %s): %d groups, sum of distances %.4f", k, backend, len(groups), cost)
    return groups


def elbow(X: np.ndarray, k_max: int, seed: int = 0, backend: str = "pam") -> list[tuple[int, float]]:
    """(k, sum of distances) for k = 1 .. min(k_max, number of labels)."""
    X = _check_matrix(X)
    if isinstance(k_max, bool) or not isinstance(k_max, (int, np.integer)) or k_max < 1:
        raise ConfigError(f"clustering.k_max={k_max!r} is invalid: use an integer >= 1")
    return [(k, fit_kmedoids(X, k, seed=seed, backend=backend)[2]) for k in range(1, min(int(k_max), len(X)) + 1)]


def format_elbow(curve: list[tuple[int, float]]) -> str:
    """Plain-text table: k, sum of distances, and the drop from the previous k."""
    lines = [f"{'k':>4}  {'sum of distances':>16}  {'drop':>10}"]
    previous = None
    for k, cost in curve:
        drop = "-" if previous is None else f"{previous - cost:10.4f}"
        lines.append(f"{k:>4}  {cost:16.4f}  {drop:>10}")
        previous = cost
    return "\n".join(lines)
