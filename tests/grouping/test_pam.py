"""MTLV's own PAM (the default, MIT-licensed k-medoids backend): hand-checked answers, and the same
results as the GPL `kmedoids` package on the real Open-I and OHSUMED label embeddings."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from sklearn.metrics import pairwise_distances

from mtlv.grouping.kmedoids import cluster_groups, elbow, fit_kmedoids, pam
from mtlv.config import compose
from mtlv.errors import ConfigError

# One dimension, rows shuffled: values 0 1 2 | 6 | 10 11 12.
VALUES = np.array([11.0, 0.0, 6.0, 12.0, 2.0, 10.0, 1.0])
X_LINE = VALUES[:, None]


def medoid_values(k: int) -> list[float]:
    return sorted(VALUES[pam(pairwise_distances(X_LINE), k)].tolist())


def test_build_picks_the_centre_then_swap_repairs_it():
    # k=1: 6 is the point with the smallest total distance (6+5+4+0+4+5+6 = 30).
    assert medoid_values(1) == [6.0]
    assert fit_kmedoids(X_LINE, 1)[2] == pytest.approx(30.0)
    # k=2: BUILD keeps 6 and adds 1 (cost 17); only SWAP reaches an optimum of cost 9
    # (e.g. medoids 1 and 10: 1+0+1 + 4 + 0+1+2).
    assert fit_kmedoids(X_LINE, 2)[2] == pytest.approx(9.0)
    assert 6.0 not in medoid_values(2)
    # k=3: the unique optimum is 1, 6, 11 (cost 1+0+1 + 0 + 1+0+1 = 4).
    assert medoid_values(3) == [1.0, 6.0, 11.0]
    assert fit_kmedoids(X_LINE, 3)[2] == pytest.approx(4.0)
    # rows 1, 6, 4 hold 0, 1, 2; row 2 holds 6; rows 5, 0, 3 hold 10, 11, 12
    assert cluster_groups(X_LINE, 3) == [[0, 3, 5], [1, 4, 6], [2]]


def test_two_dimensional_hand_checked_groups():
    # Three tight pairs/triples far apart, rows interleaved: the groups are the blobs.
    X = np.array([[0, 0], [10, 10], [0, 1], [-10, 5], [10, 11], [-10, 6], [1, 0]], dtype=float)
    assert cluster_groups(X, 3) == [[0, 2, 6], [1, 4], [3, 5]]
    # k=3 cost: triple around (0,0) with medoid (0,0): 0+1+1; pairs: 1 each -> 4
    assert fit_kmedoids(X, 3)[2] == pytest.approx(4.0)


def test_deterministic_and_seed_free(blobs):
    X, expected = blobs
    assert cluster_groups(X, 3, seed=0) == cluster_groups(X, 3, seed=123) == expected


def test_default_backend_is_the_permissive_one():
    assert compose(["clustering=kmedoids_label"]).clustering.backend == "pam"
    assert fit_kmedoids.__defaults__[-1] == "pam"


def test_kmedoids_backend_names_the_extra_when_missing(blobs, monkeypatch):
    import sys

    X, _ = blobs
    monkeypatch.setitem(sys.modules, "kmedoids", None)  # as if the optional GPL package were absent
    with pytest.raises(ConfigError, match=r"mtlv\[gpl\].*GPL-3.0|GPL-3.0.*mtlv\[gpl\]"):
        cluster_groups(X, 3, backend="kmedoids")
    assert cluster_groups(X, 3) == blobs[1]  # the default needs nothing optional


def _label_embeddings(dataset: str, feature: str) -> np.ndarray:
    from importlib.resources import files

    from mtlv.grouping.features import task_features

    descriptions = yaml.safe_load((files("mtlv.data.descriptions") / f"{dataset}.yaml").read_text())
    return task_features(list(descriptions), descriptions, feature, "packaged:minilm", scale="minmax")


@pytest.mark.parametrize("dataset", ["openi", "ohsumed"])
def test_same_results_as_the_kmedoids_package_on_real_label_embeddings(dataset):
    pytest.importorskip("kmedoids", reason="the optional GPL package (pip install mtlv[gpl]) is not installed")
    for feature in ("name", "description"):
        X = _label_embeddings(dataset, feature)
        for k in range(1, 11):
            ours = cluster_groups(X, k, backend="pam")
            theirs = cluster_groups(X, k, backend="kmedoids")
            assert ours == theirs, (dataset, feature, k)
        costs = [[cost for _, cost in elbow(X, 10, backend=b)] for b in ("pam", "kmedoids")]
        assert costs[0] == pytest.approx(costs[1], rel=1e-9)


def test_same_cost_as_the_kmedoids_package_on_random_sets():
    kmedoids = pytest.importorskip("kmedoids", reason="the optional GPL package is not installed")
    for seed in range(40):
        rng = np.random.default_rng(seed)
        D = pairwise_distances(rng.normal(size=(int(rng.integers(8, 40)), 4)))
        for k in range(1, 7):
            ours = D[:, pam(D, k)].min(axis=1).sum()
            assert ours == pytest.approx(kmedoids.pam(D, k, init="build", max_iter=100).loss, rel=1e-9)
