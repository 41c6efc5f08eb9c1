"""Agglomerative vs k-medoids on known geometry, and k=auto on curves with an obvious knee."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mtlv.grouping.choose_k import choose_k, knee
from mtlv.grouping.clusterers import Agglomerative, KMedoids, as_groups, make_clusterer
from mtlv.errors import ConfigError


def canonical(groups) -> list[list[int]]:
    return sorted((sorted(int(i) for i in g) for g in groups), key=lambda g: g[0])


def test_both_clusterers_recover_shuffled_blobs(blobs):
    X, expected = blobs
    for clusterer in (KMedoids(seed=0), Agglomerative("average"), Agglomerative("complete")):
        assignment, cost = clusterer.fit(X, 3)
        assert canonical(as_groups(assignment)) == expected
        assert cost > 0


def test_agglomerative_cost_is_the_medoid_cost_by_hand():
    X = np.array([[12.0], [0.0], [10.0], [2.0], [1.0]])  # {0,1,2} and {10,12}, rows shuffled
    assignment, cost = Agglomerative("average").fit(X, 2)
    assert as_groups(assignment) == [[0, 2], [1, 3, 4]]
    assert cost == pytest.approx(2.0 + 2.0)  # medoid 1 -> |0-1|+|2-1|; medoid 10 or 12 -> 2


def test_single_linkage_chains_where_kmedoids_splits_evenly():
    # Evenly spaced points 0..9 plus a far pair: single linkage cuts at the one big gap; k-medoids
    # with k=2 also does; with k=3 single linkage peels the widest remaining gap (between 4 and 6)
    # while k-medoids balances the chain.
    x = np.array([0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 30, 31], dtype=float)[:, None]
    single, _ = Agglomerative("single").fit(x, 3)
    assert as_groups(single) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    medoids, _ = KMedoids(seed=0).fit(x, 2)
    assert as_groups(medoids) == [list(range(10)), [10, 11]]


def test_unknown_algorithm_is_a_config_error():
    with pytest.raises(ConfigError, match="clustering.algorithm='dbscan'"):
        make_clusterer("dbscan")


def test_knee_of_an_obvious_curve():
    curve = list(zip(range(1, 9), [100.0, 40.0, 10.0, 9.0, 8.0, 7.0, 6.0, 5.0]))
    assert knee(curve) == 3
    assert knee(list(zip(range(1, 6), [5.0, 4.0, 3.0, 2.0, 1.0]))) is None  # a straight line has none


def test_k_auto_on_blobs_with_elbow_and_silhouette(blobs):
    X, _ = blobs
    fits = {k: KMedoids(seed=0).fit(X, k) for k in range(1, 9)}
    curve = [(k, c) for k, (_, c) in fits.items()]
    assignments = {k: a for k, (a, _) in fits.items()}
    k, why = choose_k(curve, X, assignments, "elbow")
    assert k == 3 and why.startswith("knee of the elbow")
    k, why = choose_k(curve, X, assignments, "silhouette")
    assert k == 3 and "silhouette" in why


def test_k_auto_without_knee_falls_back_to_silhouette():
    X = np.array([[0.0], [0.1], [5.0], [5.1]])
    line = [(1, 4.0), (2, 3.0), (3, 2.0), (4, 1.0)]
    assignments = {2: np.array([0, 0, 1, 1]), 3: np.array([0, 1, 2, 2])}
    k, why = choose_k(line, X, assignments, "elbow")
    assert k == 2 and why.startswith("no knee")


def test_grouping_with_k_auto_writes_its_choice(tmp_path, blobs):
    from mtlv.grouping.methods import LearnedGrouping

    X, expected = blobs

    class Given(LearnedGrouping):
        feature = "toy"

        def task_features(self, corpus, train_rows, out_dir, cache_dir):
            return X, None

    class Toy:
        name, label_names, num_labels = "toy", [f"l{i}" for i in range(len(X))], len(X)

    groups = Given(k="auto", algorithm="agglomerative").groups(Toy(), tmp_path, None)
    assert canonical(groups) == expected
    choice = json.loads((tmp_path / "k_choice.json").read_text())
    assert choice["k"] == 3 and choice["requested"] == "auto" and choice["why"].startswith("knee of the elbow")
    assert (tmp_path / "elbow.png").stat().st_size > 1000
