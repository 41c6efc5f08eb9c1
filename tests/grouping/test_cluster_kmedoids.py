from __future__ import annotations

import numpy as np
import pytest

from mtlv.grouping.kmedoids import cluster_groups, elbow, fit_kmedoids, format_elbow
from mtlv.errors import ConfigError


def test_recovers_blob_partition_deterministically(blobs):
    X, expected = blobs
    first = cluster_groups(X, k=3)
    assert first == expected
    assert cluster_groups(X, k=3) == first
    assert cluster_groups(X, k=3, seed=7) == expected


def test_groups_are_canonical_and_cover_every_row(blobs):
    X, _ = blobs
    for k in (2, 4, 6):
        groups = cluster_groups(X, k=k)
        assert len(groups) == k
        assert all(g == sorted(g) for g in groups)
        assert [g[0] for g in groups] == sorted(g[0] for g in groups)
        assert sorted(i for g in groups for i in g) == list(range(len(X)))


def test_fit_kmedoids_outputs_are_consistent(blobs):
    X, _ = blobs
    assignment, medoids, cost = fit_kmedoids(X, 3)
    assert assignment.shape == (len(X),) and medoids.shape == (3,)
    assert list(assignment[medoids]) == [0, 1, 2]  # each medoid heads its own cluster
    dist = np.linalg.norm(X.astype(np.float64) - X[medoids][assignment], axis=1)
    assert cost == pytest.approx(dist.sum(), rel=1e-9)
    # each point sits with its nearest medoid
    to_medoids = np.linalg.norm(X[:, None, :].astype(np.float64) - X[medoids][None], axis=2)
    assert np.array_equal(assignment, to_medoids.argmin(axis=1))


def test_k_edge_cases(blobs):
    X, _ = blobs
    m = len(X)
    assert cluster_groups(X, k=m) == [[i] for i in range(m)]
    assert cluster_groups(X, k=1) == [list(range(m))]
    assert fit_kmedoids(X, m)[2] == pytest.approx(0.0)


@pytest.mark.parametrize("k", [0, -1, 17, 100, 2.5, True])
def test_invalid_k_names_the_option(blobs, k):
    X, _ = blobs
    with pytest.raises(ConfigError, match=r"clustering\.k") as err:
        cluster_groups(X, k=k)
    assert "16 labels" in str(err.value) and "1 to 16" in str(err.value)


def test_duplicate_rows_still_give_k_groups():
    X = np.array([[0.0, 0.0]] * 4 + [[5.0, 5.0]] * 2)
    assert cluster_groups(X, k=6) == [[i] for i in range(6)]
    groups = cluster_groups(X, k=3)
    assert len(groups) == 3 and sorted(i for g in groups for i in g) == list(range(6))
    assert cluster_groups(X, k=2) == [[0, 1, 2, 3], [4, 5]]


def test_single_label():
    assert cluster_groups(np.ones((1, 4)), k=1) == [[0]]
    assert elbow(np.ones((1, 4)), k_max=5) == [(1, 0.0)]


def test_elbow_non_increasing_with_right_length(blobs):
    X, _ = blobs
    curve = elbow(X, k_max=10)
    assert [k for k, _ in curve] == list(range(1, 11))
    costs = [c for _, c in curve]
    assert all(b <= a + 1e-9 for a, b in zip(costs, costs[1:]))
    assert len(elbow(X, k_max=50)) == len(X)  # capped at the number of labels
    assert elbow(X, k_max=50)[-1][1] == pytest.approx(0.0)


def test_elbow_bends_at_true_k(blobs):
    X, _ = blobs
    costs = dict(elbow(X, k_max=8))
    drops = {k: costs[k - 1] - costs[k] for k in range(2, 9)}
    bend = {k: drops[k] - drops[k + 1] for k in range(2, 8)}
    assert max(bend, key=bend.get) == 3
    assert drops[4] < 0.1 * drops[3]


def test_elbow_rejects_bad_k_max(blobs):
    X, _ = blobs
    with pytest.raises(ConfigError, match="k_max"):
        elbow(X, k_max=0)


def test_format_elbow_table():
    text = format_elbow([(1, 10.0), (2, 4.5), (3, 4.0)])
    lines = text.splitlines()
    assert len(lines) == 4
    assert "sum of distances" in lines[0] and "drop" in lines[0]
    assert lines[1].split() == ["1", "10.0000", "-"]
    assert lines[2].split() == ["2", "4.5000", "5.5000"]
    assert lines[3].split() == ["3", "4.0000", "0.5000"]


def test_unknown_backend_and_bad_matrix(blobs):
    X, _ = blobs
    with pytest.raises(ConfigError, match="clustering.backend"):
        cluster_groups(X, k=3, backend="nope")
    with pytest.raises(ConfigError, match="NaN"):
        cluster_groups(np.array([[0.0, np.nan], [1.0, 1.0]]), k=1)
    with pytest.raises(ConfigError):
        cluster_groups(np.zeros((0, 3)), k=1)


def test_sklearn_extra_backend(blobs):
    X, expected = blobs
    try:
        import sklearn_extra  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError) as err:
            cluster_groups(X, k=3, backend="sklearn_extra")
        msg = str(err.value)
        assert "pip install scikit-learn-extra" in msg and "numpy<2" in msg and "clustering.backend" in msg
    else:
        assert cluster_groups(X, k=3, backend="sklearn_extra") == expected
