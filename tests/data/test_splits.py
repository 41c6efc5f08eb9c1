"""Splits (mtlv/data/splits.py): disjoint parts that cover every document, k folds whose test parts
cover every document once, each label stratified, a given split column used as it is, seeded."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtlv.data.corpus import Corpus
from mtlv.data.splits import compute_split, load_or_make_split

N = 600
RATES = np.array([0.04, 0.08, 0.12, 0.2, 0.3, 0.45, 0.06, 0.15])  # rare to common, as real label sets are
# Stratification tolerance: each label's positives in a part may differ from their proportional share
# (total positives × the part's share of documents) by at most this many documents. Iterative
# stratification hands out the rarest label's documents first, each to the part that lacks it most, so
# a part misses its share only by rounding (twice: test, then validation out of the rest) and by
# documents with several labels, which fill several quotas at once: measured at most 3.2 documents
# over 10 corpora like this one, holdout and 4- and 5-fold splits. A random split of the same sizes
# misses by up to 16 and stays within 4 in 1 of 200 tries, so the check tells the two apart.
TOLERANCE = 4


def corpus(seed: int = 0, n: int = N) -> Corpus:
    """Correlated labels (a per-document 'busyness' scales every label's rate), shuffled-looking ids."""
    rng = np.random.default_rng(seed)
    busy = rng.random(n)
    labels = (rng.random((n, len(RATES))) < RATES * (0.5 + busy[:, None])).astype(np.uint8)
    ids = [f"doc{int(i)}" for i in rng.permutation(10 * n)[:n]]
    return Corpus("syn", ids, [f"text {i}" for i in range(n)], labels, [f"L{j}" for j in range(len(RATES))])


def parts(split) -> dict[str, np.ndarray]:
    return {"train": split.train, "val": split.val, "test": split.test}


def assert_partition(split, n: int) -> None:
    sets = {name: set(idx.tolist()) for name, idx in parts(split).items()}
    for name, idx in parts(split).items():
        assert len(sets[name]) == len(idx) > 0, f"{name} repeats a document or is empty"
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"] and not sets["val"] & sets["test"]
    assert sets["train"] | sets["val"] | sets["test"] == set(range(n))


def assert_stratified(c: Corpus, split) -> None:
    total = c.labels.sum(axis=0).astype(float)
    for name, idx in parts(split).items():
        share = total * len(idx) / len(c)
        got = c.labels[idx].sum(axis=0)
        off = np.abs(got - share)
        assert off.max() <= TOLERANCE, (f"{name}: positives per label {got.tolist()} vs proportional "
                                        f"{np.round(share, 1).tolist()}")


def test_holdout_parts_are_disjoint_cover_everything_and_have_the_asked_sizes():
    c = corpus()
    split = compute_split(c, folds=None, fold=0, test_size=0.2, val_size=0.15, seed=42)
    assert_partition(split, N)
    assert len(split.test) == pytest.approx(0.2 * N, abs=2)
    assert len(split.val) == pytest.approx(0.15 * (N - len(split.test)), abs=2)
    assert_stratified(c, split)


@pytest.mark.parametrize("folds", [4, 5])
def test_k_folds_test_parts_cover_every_document_exactly_once(folds):
    c = corpus(1)
    seen = np.zeros(N, dtype=int)
    for fold in range(folds):
        split = compute_split(c, folds=folds, fold=fold, test_size=0.2, val_size=0.15, seed=7)
        assert_partition(split, N)
        assert_stratified(c, split)
        seen[split.test] += 1
        assert len(split.test) == pytest.approx(N / folds, abs=2)
    assert (seen == 1).all(), f"documents tested {sorted(set(seen.tolist()))} times"


@pytest.mark.parametrize("folds", [None, 4])
def test_same_seed_same_split_another_seed_another(tmp_path, folds):
    c = corpus(2)
    first = load_or_make_split(c, tmp_path / "a", folds=folds, fold=1, seed=3)
    again = load_or_make_split(c, tmp_path / "b", folds=folds, fold=1, seed=3)  # another cache: computed again
    cached = load_or_make_split(c, tmp_path / "a", folds=folds, fold=1, seed=3)  # read back from the saved file
    other = load_or_make_split(c, tmp_path / "a", folds=folds, fold=1, seed=4)
    for split in (again, cached):
        for name in ("train", "val", "test"):
            np.testing.assert_array_equal(getattr(split, name), getattr(first, name))
    assert cached.path == first.path and again.path != first.path
    assert set(other.test.tolist()) != set(first.test.tolist())
    assert set(other.val.tolist()) != set(first.val.tolist())
    # The same test part with another seed (a fold fixed another way) still draws another validation part.
    fixed = Corpus(c.name, c.ids, c.texts, c.labels, c.label_names, given_split=np.where(
        np.isin(np.arange(N), first.test), "test", "train"))
    a, b = (load_or_make_split(fixed, tmp_path / "g", seed=s) for s in (3, 4))
    np.testing.assert_array_equal(a.test, b.test)
    assert set(a.val.tolist()) != set(b.val.tolist())


def test_given_split_column_is_used_exactly(tmp_path):
    """dataset=csv with dataset.source.split_column: test = exactly the rows marked test (whatever
    their labels), train+validation = exactly the rows marked train, through the job's own code path."""
    from mtlv.config import compose
    from mtlv.grouping.partition import TaskGrouping
    from mtlv.data.load import load_corpus
    import dataclasses

    from mtlv.run.job import prepare_folder
    from mtlv.run.spec import JobSpec
    from mtlv.layout import JobLayout

    rng = np.random.default_rng(5)
    n, names = 240, ["fever", "cough", "rash"]
    # Test rows scattered (not a block, not stratified: the given split must win over stratification).
    marks = np.where(rng.random(n) < 0.3, "test", "train")
    marks[:3] = ["Test", "TRAIN", " test "]  # cell values are read case- and space-insensitively
    rows = []
    for i in range(n):
        on = [nm for nm, r in zip(names, (0.3, 0.5, 0.2)) if rng.random() < r] or ["fever"]
        rows.append({"rid": f"r{1000 - i}", "text": f"note {i} " + " ".join(on), "labels": ";".join(on),
                     "part": marks[i]})
    path = tmp_path / "notes.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    cfg = compose(["dataset=csv", f"dataset.path={path}", "dataset.source.split_column=part",
                   "dataset.source.id_column=rid", f"paths.output_dir={tmp_path / 'out'}"])
    c = load_corpus(cfg)
    grouping = TaskGrouping(tuple(c.label_names), (tuple(range(c.num_labels)),), "heads")
    split = prepare_folder(dataclasses.replace(JobSpec.of(cfg), job=JobLayout(tmp_path / "job")), c, grouping)
    assert_partition(split, n)
    marked_test = {r["rid"] for r in rows if r["part"].strip().lower() == "test"}
    assert {c.ids[i] for i in split.test} == marked_test
    assert {c.ids[i] for i in np.concatenate([split.train, split.val])} == {r["rid"] for r in rows} - marked_test
    assert len(split.val) == pytest.approx(0.15 * (n - len(marked_test)), abs=2)
    # split.use_given=false ignores the column: a stratified test part of test_size instead.
    cfg = compose(["dataset=csv", f"dataset.path={path}", "dataset.source.split_column=part",
                   "dataset.source.id_column=rid", f"paths.output_dir={tmp_path / 'out'}", "split.use_given=false"])
    ignored = load_or_make_split(c, cfg.paths.cache_dir, seed=int(cfg.seed), **cfg.split)
    assert {c.ids[i] for i in ignored.test} != marked_test
    assert len(ignored.test) == pytest.approx(0.2 * n, abs=6)  # iterstrat's sizes can be a few off
