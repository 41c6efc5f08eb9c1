"""Seeded multilabel-stratified splits, saved as index files so that every architecture of a study
trains and tests on identical documents."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtlv.data.corpus import Corpus
from mtlv.errors import ConfigError
from mtlv.io import atomic_path, stable_hash

log = logging.getLogger(__name__)


@dataclass
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    path: Path | None = None

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def _stratified_holdout(labels: np.ndarray, pool: np.ndarray, size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    keep, held = next(_holdout_splitter(labels[pool], size, seed).split(np.zeros(len(pool)), _target(labels[pool])))
    return np.sort(pool[keep]), np.sort(pool[held])


def _target(labels: np.ndarray) -> np.ndarray:
    """What the stratifier reads: the label matrix, or for a single label its column (scikit-learn's
    stratifiers take a class vector; iterstrat refuses one column as "binary")."""
    return labels if labels.shape[1] > 1 else labels[:, 0]


def _holdout_splitter(labels: np.ndarray, size: float, seed: int):
    """Several labels: iterstrat's multilabel stratification. One label (a binary dataset, m=1): scikit-learn's
    StratifiedShuffleSplit; it refuses a class with one document, which cannot be stratified anyway, so that
    label is split at random."""
    # scikit-learn and iterstrat are imported here, not at module level: the option checks import this module
    if labels.shape[1] > 1:
        from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

        return MultilabelStratifiedShuffleSplit(n_splits=1, test_size=size, random_state=seed)
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    rare = np.bincount(labels[:, 0], minlength=2).min()
    return (StratifiedShuffleSplit if rare >= 2 else ShuffleSplit)(n_splits=1, test_size=size, random_state=seed)


def _kfold(labels: np.ndarray, folds: int, seed: int):
    if labels.shape[1] > 1:
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

        return MultilabelStratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)


def compute_split(corpus: Corpus, folds: int | None, fold: int, test_size: float, val_size: float,
                  seed: int, use_given: bool = True) -> Split:
    n = len(corpus)
    everything = np.arange(n)
    if folds is not None:
        kfold = _kfold(corpus.labels, int(folds), seed)
        train_pool, test = list(kfold.split(np.zeros(n), _target(corpus.labels)))[int(fold)]
    elif use_given and corpus.given_split is not None:
        train_pool, test = everything[corpus.given_split == "train"], everything[corpus.given_split == "test"]
    else:
        train_pool, test = _stratified_holdout(corpus.labels, everything, test_size, seed)
    train, val = _stratified_holdout(corpus.labels, np.sort(train_pool), val_size, seed)
    return Split(train=train, val=val, test=np.sort(test))


def validate_split_options(folds: int | None, fold: int, test_size: float, val_size: float) -> None:
    if folds is not None:
        if int(folds) < 2:
            raise ConfigError(f"split.folds={folds}: cross-validation needs at least 2 folds "
                              "(or split.folds=null for one train/test split)")
        if not 0 <= int(fold) < int(folds):
            raise ConfigError(f"split.fold={fold} is out of range for split.folds={folds}: use 0..{int(folds) - 1}")
    for name, value in (("split.test_size", test_size), ("split.val_size", val_size)):
        if not 0 < float(value) < 1:
            raise ConfigError(f"{name}={value} must be a fraction between 0 and 1 (e.g. {name}="
                              f"{0.2 if name == 'split.test_size' else 0.15})")


def load_or_make_split(corpus: Corpus, cache_dir: str | Path, folds: int | None = None, fold: int = 0,
                       test_size: float = 0.2, val_size: float = 0.15, seed: int = 42,
                       use_given: bool = True) -> Split:
    """The split for these options, read from `cache_dir/splits/` if an earlier run saved it."""
    validate_split_options(folds, fold, test_size, val_size)
    key = stable_hash([corpus.fingerprint(), folds, fold, test_size, val_size, seed, use_given])
    path = Path(cache_dir) / "splits" / f"{corpus.name}-{key}.npz"
    if path.exists():
        saved = np.load(path)
        split = Split(saved["train"], saved["val"], saved["test"], path)
    else:
        split = compute_split(corpus, folds, fold, test_size, val_size, seed, use_given)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, train=split.train, val=split.val, test=split.test)
        split.path = path
    warn_missing_positives(corpus, split)
    warn_shared_texts(corpus, split)
    return split


def shared_texts(corpus: Corpus, split: Split) -> dict[str, int]:
    """How many validation/test documents have an exact copy (same text) in an earlier part."""
    train = {corpus.texts[i] for i in split.train}
    val = {corpus.texts[i] for i in split.val}
    return {"val_in_train": sum(corpus.texts[i] in train for i in split.val),
            "test_in_train": sum(corpus.texts[i] in train for i in split.test),
            "test_in_val": sum(corpus.texts[i] in val and corpus.texts[i] not in train for i in split.test)}


def warn_shared_texts(corpus: Corpus, split: Split) -> dict[str, int]:
    """Copies of training texts in validation or test inflate the scores: say how many there are."""
    counts = shared_texts(corpus, split)
    if any(counts.values()):
        log.warning("duplicate texts across splits: %d of %d test documents are copies of training documents, "
                    "%d more of validation ones; %d of %d validation documents are copies of training ones. "
                    "Scores on copies are inflated: for dataset=csv set dataset.source.drop_duplicates=true "
                    "(keeps the first of each repeated text), or deduplicate the file",
                    counts["test_in_train"], len(split.test), counts["test_in_val"], counts["val_in_train"],
                    len(split.val))
    return counts


def warn_missing_positives(corpus: Corpus, split: Split) -> list[str]:
    """Labels without a positive in train or validation cannot be learned or tuned: say which."""
    missing = []
    for part in ("train", "val"):
        counts = corpus.labels[getattr(split, part)].sum(axis=0)
        for j in np.flatnonzero(counts == 0):
            missing.append(f"{corpus.label_names[j]} ({part})")
    if missing:
        log.warning("labels with no positive example: %s; their F1 is reported as undefined (NaN) "
                    "where they have no positive, and left out of F1-macro", ", ".join(missing))
    return missing


DOCUMENTS_ROW = "(documents)"  # label_count_table's row of document counts


def constant_labels(counts, part: str = "test") -> tuple[list[str], list[str]]:
    """(labels on every document of `part`, labels on none) from a `label_count_table`."""
    column = counts[part].drop(index=DOCUMENTS_ROW)
    documents = int(counts.loc[DOCUMENTS_ROW, part])
    return list(column.index[column == documents]), list(column.index[column == 0])


def label_count_table(corpus: Corpus, split: Split):
    import pandas as pd

    rows = {"total": corpus.labels.sum(axis=0)}
    for part in ("train", "val", "test"):
        rows[part] = corpus.labels[getattr(split, part)].sum(axis=0)
    frame = pd.DataFrame(rows, index=corpus.label_names).astype(int)
    frame.loc[DOCUMENTS_ROW] = [len(corpus), len(split.train), len(split.val), len(split.test)]
    return frame
