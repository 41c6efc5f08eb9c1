"""clustering.k=auto: the number of groups read off the elbow curve (knee detection, `kneed`) or,
where the curve has no knee, the k with the best silhouette."""
from __future__ import annotations

import logging

import numpy as np

from mtlv.errors import ConfigError

log = logging.getLogger(__name__)

SELECTORS = ("elbow", "silhouette")


def silhouettes(X: np.ndarray, assignments: dict[int, np.ndarray]) -> dict[int, float]:
    """Mean silhouette per k (defined for 2 <= k <= number of labels - 1)."""
    from sklearn.metrics import silhouette_score

    return {k: float(silhouette_score(X, a)) for k, a in assignments.items() if 2 <= k <= len(X) - 1}


def knee(curve: list[tuple[int, float]]) -> int | None:
    """The knee of a decreasing, convex cost curve (Satopää et al. 2011), or None if it has none."""
    from kneed import KneeLocator

    if len(curve) < 3:
        return None
    ks, costs = [k for k, _ in curve], [c for _, c in curve]
    found = KneeLocator(ks, costs, curve="convex", direction="decreasing", S=1.0).knee
    return None if found is None else int(found)


def choose_k(curve: list[tuple[int, float]], X: np.ndarray, assignments: dict[int, np.ndarray],
             select: str = "elbow") -> tuple[int, str]:
    """(k, why) from the elbow curve and each k's assignment."""
    if select not in SELECTORS:
        raise ConfigError(f"clustering.k_select={select!r}: use one of {list(SELECTORS)}")
    if select == "elbow":
        k = knee(curve)
        if k is not None:
            return k, f"knee of the elbow curve (kneed, k=1..{curve[-1][0]})"
    scores = silhouettes(X, assignments)
    if not scores:
        return 1, "one group: too few labels for a knee or a silhouette"
    k = max(scores, key=lambda key: (scores[key], -key))
    first = "no knee in the elbow curve, so " if select == "elbow" else ""
    return k, f"{first}best mean silhouette ({scores[k]:.3f}, k=2..{max(scores)})"
