"""Checks of a loaded corpus, before it is split or tokenized: it has documents and labels, its labels vary,
and each part of the asked split (train, validation, test; or a fold) gets enough documents. Each failure is
a DataError/ConfigError naming the dataset and the fix (one `error:` line, exit code 2)."""
from __future__ import annotations

import math

from omegaconf import DictConfig, OmegaConf

from mtlv.data.splits import validate_split_options
from mtlv.errors import ConfigError, DataError

MIN_DOCUMENTS = 10  # enough for the smallest parts below (with the default split sizes)
# The fewest documents a part may have: fewer is no training (one document) or no measurement (a threshold
# chosen on, or an F1 of, a single document); a run with such a part would still "finish" with numbers.
MIN_PARTS = {"train": 5, "validation": 2, "test": 2}


def check_corpus(cfg: DictConfig, corpus) -> None:
    """The loaded documents can be split as asked: some documents, some labels, each part non-empty."""
    where = f"dataset={cfg.dataset.name}"
    # resolved already: the corpus was just loaded from it
    path = OmegaConf.select(cfg, "dataset.path", default=None, throw_on_missing=False)
    if path is not None:
        where += f" (dataset.path={path})"
    if len(corpus) == 0:
        raise DataError(f"{where} has no documents (only a header, or every text is empty); "
                        "point dataset.path=... at a file with one document per row")
    if corpus.num_labels == 0:
        raise DataError(f"{where} has no labels: no document has any; put labels in the column named by "
                        "dataset.source.label_column (delimited by dataset.source.label_delimiter), or list "
                        "0/1 columns in dataset.source.label_columns=[...]")
    if len(corpus) < MIN_DOCUMENTS:
        raise DataError(f"{where} has {len(corpus)} document(s); training needs at least {MIN_DOCUMENTS} "
                        "(for train, validation and test parts)")
    check_labels_vary(where, corpus)
    split = cfg.get("split")
    if split is None:
        return
    # the ranges first: the part sizes below divide by split.folds (a study loads its data before the jobs'
    # own option checks run)
    validate_split_options(split.folds, split.fold, split.test_size, split.val_size)
    given = split.use_given and split.folds is None and corpus.given_split is not None
    if given:
        n_test = int((corpus.given_split == "test").sum())
        if small := _too_small(*_parts(len(corpus) - n_test, split.val_size), n_test)[1]:
            raise DataError(f"{where}: its own train/test split gives {small}; set split.use_given=false (or add "
                            "documents to the small part)")
        return
    if split.folds is not None:
        if small := _too_small(*_fold_parts(len(corpus), split.folds, split.val_size))[1]:
            most = max((k for k in range(2, int(split.folds))
                        if not _too_small(*_fold_parts(len(corpus), k, split.val_size))[0]), default=None)
            fix = f"use split.folds={most} or fewer" if most else "use split.folds=null"
            raise ConfigError(f"split.folds={split.folds}: {len(corpus)} documents in {split.folds} folds give {small}; "
                              f"{fix}")
        return
    n_test = math.ceil(len(corpus) * split.test_size)
    parts, small = _too_small(*_parts(len(corpus) - n_test, split.val_size), n_test)
    if small:
        fix = ("lower split.test_size or split.val_size (the defaults: 0.2 and 0.15)" if "train" in parts else
               "raise split.val_size" if "validation" in parts else "raise split.test_size")
        raise ConfigError(f"split.test_size={split.test_size}, split.val_size={split.val_size}: {len(corpus)} "
                          f"documents give {small}; {fix}")


def check_labels_vary(where: str, corpus) -> None:
    """A dataset whose every label is the same on every document (on all of them, or on none) has nothing to
    learn or measure: its F1 would be 1.0 or undefined by construction. One label is a valid dataset (a binary
    task, m=1) as long as some documents have it and some do not; a constant label among others that vary is
    trained, and the reports flag it."""
    positives = corpus.labels.sum(axis=0)
    constant = [(name, int(count)) for name, count in zip(corpus.label_names, positives)
                if count in (0, len(corpus))]
    if len(constant) < corpus.num_labels:
        return
    named = ", ".join(f"'{name}' on {'all' if count else 'none'} of them" for name, count in constant)
    raise DataError(f"{where}: every label is the same on all {len(corpus)} documents ({named}): nothing to learn; "
                    "a label needs documents with it and documents without it (for a binary task, give the "
                    "documents without the label too, with an empty label cell)")


def _parts(pool: int, val_size: float) -> tuple[int, int]:
    """(train, validation) sizes of a training pool."""
    val = math.ceil(pool * val_size)
    return pool - val, val


def _fold_parts(n: int, folds: int, val_size: float) -> tuple[int, int, int]:
    """(train, validation, test) sizes of the smallest fold (stratified folds may differ by a document or so)."""
    test = n // folds
    return (*_parts(n - test, val_size), test)


def _too_small(train: int, val: int, test: int) -> tuple[list[str], str]:
    """The parts with fewer than MIN_PARTS documents, and a text naming them and the minimums ('' if none)."""
    sizes = {"train": train, "validation": val, "test": test}
    small = [part for part in sizes if sizes[part] < MIN_PARTS[part]]
    if not small:
        return [], ""
    minimums = ", ".join(f"{n} {part}" for part, n in MIN_PARTS.items())
    return small, (f"{' and '.join(f'{sizes[part]} {part}' for part in small)} document(s) (of {train} train, {val} "
                   f"validation, {test} test); every part needs at least {minimums} documents")
