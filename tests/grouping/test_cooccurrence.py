"""Co-occurrence task features, checked against similarities worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mtlv.grouping.cooccurrence import cooccurrence_similarity, similarity_to_distance
from mtlv.grouping.methods import CooccurrenceGrouping
from mtlv.data.corpus import Corpus
from mtlv.errors import ConfigError

# 6 documents x labels (A, B, C). Counts: A=3, B=3, C=2; together: AB=2, AC=0, BC=1.
ROWS = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 1], [0, 0, 0]])


def shuffled(columns: list[int]) -> np.ndarray:
    """The same documents in another order, with the label columns permuted."""
    order = np.random.default_rng(3).permutation(len(ROWS))
    return ROWS[order][:, columns]


def test_jaccard_by_hand():
    Y = shuffled([2, 0, 1])  # columns C, A, B
    D = similarity_to_distance(cooccurrence_similarity(Y, "jaccard"), "jaccard")
    # Jaccard: AB = 2/4, AC = 0/5, BC = 1/4  ->  distance 1 - J
    expected = {(1, 2): 0.5, (0, 1): 1.0, (0, 2): 0.75}
    for (i, j), d in expected.items():
        assert D[i, j] == pytest.approx(d) and D[j, i] == pytest.approx(d)
    assert np.all(np.diag(D) == 0)


def test_npmi_by_hand():
    Y = shuffled([0, 1, 2])
    S = cooccurrence_similarity(Y, "npmi")
    npmi_ab = math.log((2 / 6) / (0.5 * 0.5)) / -math.log(2 / 6)  # 0.26186
    assert S[0, 1] == pytest.approx(npmi_ab) and npmi_ab == pytest.approx(0.261860, abs=1e-6)
    assert S[0, 2] == -1.0                     # never together
    assert S[1, 2] == pytest.approx(0.0, abs=1e-12)  # p(BC) = p(B) p(C) = 1/6: independent
    D = similarity_to_distance(S, "npmi")
    assert D[0, 1] == pytest.approx((1 - 0.261860) / 2, abs=1e-6) and D[0, 2] == 1.0
    assert D[1, 2] == pytest.approx(0.5)


def test_unknown_measure_is_a_config_error():
    with pytest.raises(ConfigError, match="clustering.measure='cosine'"):
        cooccurrence_similarity(ROWS, "cosine")


def test_grouping_reads_the_training_rows_only(tmp_path):
    """On the training rows A goes with C and B with D; the held-out rows (more of them) pair A with B."""
    rng = np.random.default_rng(0)
    train = np.array([[1, 0, 1, 0]] * 20 + [[0, 1, 0, 1]] * 20)
    held = np.array([[1, 1, 0, 0]] * 60 + [[0, 0, 1, 1]] * 60)
    labels = np.vstack([train, held])
    order = rng.permutation(len(labels))
    labels = labels[order]
    train_rows = np.flatnonzero(order < len(train))
    corpus = Corpus("toy", [str(i) for i in range(len(labels))], ["x"] * len(labels), labels, list("ABCD"))
    method = CooccurrenceGrouping(measure="jaccard", k=2, seed=0)
    assert method.groups(corpus, tmp_path, None, train_rows) == [[0, 2], [1, 3]]
    everything = CooccurrenceGrouping(measure="jaccard", k=2, seed=0).groups(corpus, tmp_path / "all", None,
                                                                              np.arange(len(labels)))
    assert everything == [[0, 1], [2, 3]]  # the held-out pairing wins when every row is seen
    assert (tmp_path / "task_similarity.csv").exists() and (tmp_path / "k_choice.json").exists()
