"""Gradient affinity on a synthetic case with a known answer: label 1 is an exact copy of label 0
(their gradients agree: high affinity), label 2 is its negation (they pull the shared encoder in
opposite directions: negative affinity) and label 3 is unrelated noise."""
from __future__ import annotations

import functools
import json
import os

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import run_cli

from mtlv.data.corpus import Corpus
from mtlv.errors import ConfigError
from mtlv.grouping import affinity
from mtlv.grouping.affinity import affinity_to_distance, resolve_device, task_affinity
from mtlv.grouping.methods import AffinityGrouping
from mtlv.run.cell import grouping_params

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


def toy_corpus(n: int = 64) -> Corpus:
    """Labels C and A are copies, D is C's negation, B is noise (non-contiguous on purpose)."""
    texts, labels = synthetic(n)
    return Corpus("toy", [f"d{i}" for i in range(n)], texts, labels[:, [3, 0, 1, 2]].astype(np.uint8), list("BACD"))


def count_runs(monkeypatch) -> list:
    calls = []
    real = affinity.task_affinity

    @functools.wraps(real)  # keeps the signature that cached_affinity binds the options to
    def counted(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(affinity, "task_affinity", counted)
    return calls


RUN = dict(steps=3, batch_size=16, lr=1e-3, max_length=32, random_init=TINY, device="cpu")


def test_cells_of_one_fold_share_one_affinity_run(tmp_path, monkeypatch):
    calls = count_runs(monkeypatch)
    corpus = toy_corpus()
    rows = np.random.default_rng(3).permutation(64)[:48]  # a shuffled, non-contiguous fold
    cache = tmp_path / "cache"
    first = AffinityGrouping(k=2, algorithm="kmedoids", backend="pam", seed=0, **RUN)
    second = AffinityGrouping(k="auto", algorithm="agglomerative", k_select="silhouette", k_max=3, seed=0, **RUN)
    groups = first.groups(corpus, tmp_path / "k2", cache, rows)
    assert len(calls) == 1
    assert [1, 2] in groups  # A and C are the same label: one group
    second.groups(corpus, tmp_path / "auto", cache, rows)
    assert len(calls) == 1  # the second cell read the first one's matrix
    matrix = (tmp_path / "k2" / "task_similarity.csv").read_text()
    assert (tmp_path / "auto" / "task_similarity.csv").read_text() == matrix
    A = pd.read_csv(tmp_path / "k2" / "task_similarity.csv", index_col=0)
    assert A.loc["A", "C"] == pytest.approx(1.0, abs=1e-5) and A.loc["A", "D"] < 0
    one, two = (json.loads((tmp_path / d / "affinity_cost.json").read_text()) for d in ("k2", "auto"))
    assert one["cached"] is False and two["cached"] is True and two["device"] == one["device"] == "cpu"
    assert (two["steps"], two["seconds"]) == (3, one["seconds"])  # the run's own cost, not the lookup's
    params = grouping_params(tmp_path / "auto")
    assert params["clustering.affinity_steps"] == 3 and params["clustering.affinity_cached"] is True

    edited = toy_corpus()
    outside = np.setdiff1d(np.arange(64), rows)[0]
    edited.labels[outside, 0] ^= 1  # a document outside the fold: same training rows, same run
    first.groups(edited, tmp_path / "outside", cache, rows)
    assert len(calls) == 1
    edited.labels[rows[5], 0] ^= 1  # one training label edited: another key, a new run
    first.groups(edited, tmp_path / "edited", cache, rows)
    assert len(calls) == 2
    AffinityGrouping(k=2, seed=0, **{**RUN, "steps": 4}).groups(corpus, tmp_path / "steps", cache, rows)
    assert len(calls) == 3  # a run option is part of the key
    assert len(list((cache / "affinity").glob("*.npz"))) == 3


def test_without_cache_dir_every_call_runs(tmp_path, monkeypatch):
    calls = count_runs(monkeypatch)
    corpus, rows = toy_corpus(32), np.arange(32)
    for _ in range(2):
        AffinityGrouping(k=2, seed=0, **RUN).groups(corpus, tmp_path, None, rows)
    assert len(calls) == 2


def test_unusable_device_is_refused():
    missing = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"
    for device, words in ((missing, "clustering.device='cuda"), ("gpu0", "not a device"), ("meta", "cpu and cuda")):
        with pytest.raises(ConfigError, match=words):
            resolve_device(device)
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_cluster_cli_refuses_unusable_device_before_any_work(tmp_path):
    missing = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"
    proc = run_cli("mtlv.cluster", ["dataset=demo", "dataset.limit=60", "model=tiny", "clustering=affinity",
                                    f"clustering.device={missing}", f"paths.cache_dir={tmp_path}/cache"],
                   tmp_path, check=False, timeout=600)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"clustering.device='{missing}'" in lines[0] and "clustering.device=" in lines[0]
    assert not (tmp_path / "cache").exists() and not (tmp_path / "clustering").exists()


@pytest.mark.gpu
@pytest.mark.parametrize("measure", ["cosine", "lookahead"])
def test_cuda_matches_cpu(measure):
    # Dropout off: CUDA draws its masks from another generator, which would differ by more than rounding.
    quiet = {**TINY, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    texts, labels = synthetic()
    run = dict(steps=4, batch_size=16, lr=1e-3, max_length=32, random_init=quiet, seed=0)
    encoder = os.environ.get("MINILM", "packaged:minilm")  # the gpu-kit's copy on a GPU machine
    A_cpu, _ = task_affinity(texts, labels, encoder, measure, device="cpu", **run)
    A_gpu, cost = task_affinity(texts, labels, encoder, measure, device="cuda", **run)
    assert cost["device"].startswith("cuda")
    assert np.abs(A_gpu - A_cpu).max() < 1e-3, np.abs(A_gpu - A_cpu).max()
