"""Gradient affinity on a synthetic case with a known answer: label 1 is an exact copy of label 0
(their gradients agree: high affinity), label 2 is its negation (they pull the shared encoder in
opposite directions: negative affinity) and label 3 is unrelated noise."""
from __future__ import annotations

import numpy as np
import pytest

from mtlv.grouping.affinity import affinity_to_distance, task_affinity
from mtlv.errors import ConfigError

TINY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64}


def synthetic(n: int = 64):
    rng = np.random.default_rng(1)
    words = ["chest", "heart", "lung", "clear", "normal", "mild", "stable", "acute"]
    y0 = rng.integers(0, 2, n)
    texts = [" ".join(rng.choice(words, 6)) + (" effusion present" if y else " no effusion") for y in y0]
    labels = np.column_stack([y0, y0, 1 - y0, rng.integers(0, 2, n)])
    return texts, labels


@pytest.mark.parametrize("measure", ["cosine", "lookahead"])
def test_copies_agree_and_opposites_conflict(measure):
    texts, labels = synthetic()
    A, cost = task_affinity(texts, labels, "packaged:minilm", measure, steps=4, batch_size=16, lr=1e-3,
                            max_length=32, random_init=TINY, seed=0)
    assert A.shape == (4, 4) and cost["steps"] == 4 and cost["seconds"] > 0
    assert A[0, 1] > 0 and A[1, 0] > 0
    assert A[0, 2] < 0 and A[2, 0] < 0
    assert A[0, 1] > A[0, 3] > A[0, 2]
    if measure == "cosine":
        assert A[0, 1] == pytest.approx(1.0, abs=1e-6)  # identical labels, identical heads: identical gradients
    D = affinity_to_distance(A, measure)
    assert D[0, 1] < D[0, 3] < D[0, 2] and np.all(np.diag(D) == 0)


def test_affinity_to_distance_by_hand():
    A = np.array([[1.0, 0.6, -1.0], [0.2, 1.0, 0.0], [-1.0, 0.0, 1.0]])
    D = affinity_to_distance(A, "cosine")  # symmetrised: 0.4 between 0 and 1; (1 - s) / 2
    assert D[0, 1] == pytest.approx(0.3) and D[0, 2] == pytest.approx(1.0) and D[1, 2] == pytest.approx(0.5)
    L = affinity_to_distance(A, "lookahead")  # off-diagonal 0.4, -1, 0 min-max scaled: higher = closer
    assert L[0, 1] == pytest.approx(0.0) and L[0, 2] == pytest.approx(1.0) and L[1, 2] == pytest.approx(0.4 / 1.4)


def test_bad_measure_and_steps():
    texts, labels = synthetic(8)
    with pytest.raises(ConfigError, match="clustering.measure='tag'"):
        task_affinity(texts, labels, "packaged:minilm", "tag", random_init=TINY)
    with pytest.raises(ConfigError, match="clustering.steps=0"):
        task_affinity(texts, labels, "packaged:minilm", "cosine", steps=0, random_init=TINY)
