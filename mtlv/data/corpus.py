"""The in-memory form every dataset source produces."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mtlv.errors import DataError
from mtlv.io import stable_hash


@dataclass
class Corpus:
    """m binary tasks over the same texts.

    `labels` is an (n, m) uint8 matrix whose columns follow `label_names`.
    `given_split`, when the dataset ships one, holds "train" or "test" per document.
    `descriptions` maps a label name to a one- or two-sentence description (for clustering).
    """

    name: str
    ids: list[str]
    texts: list[str]
    labels: np.ndarray
    label_names: list[str]
    descriptions: dict[str, str] = field(default_factory=dict)
    given_split: np.ndarray | None = None
    notes: dict[str, int] = field(default_factory=dict)  # preprocessing counts, for the log

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.uint8)
        n, m = len(self.texts), len(self.label_names)
        if len(self.ids) != n or self.labels.shape != (n, m):
            raise DataError(
                f"dataset '{self.name}': {len(self.ids)} ids, {n} texts and a label matrix of "
                f"shape {self.labels.shape} do not match {m} label names"
            )
        if len(set(self.ids)) != n:
            raise DataError(f"dataset '{self.name}': document ids are not unique")
        if len(set(self.label_names)) != m:
            raise DataError(f"dataset '{self.name}': label names are not unique: {self.label_names}")
        if self.given_split is not None:
            self.given_split = np.asarray(self.given_split)
            bad = set(self.given_split.tolist()) - {"train", "test"}
            if bad:
                raise DataError(f"dataset '{self.name}': given split has values {sorted(bad)}; use train/test")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def fingerprint(self) -> str:
        """Content hash of texts, ids and labels: keys caches and saved splits."""
        return stable_hash(
            [self.name, self.ids, self.texts, self.labels.tolist(), self.label_names,
             None if self.given_split is None else self.given_split.tolist()]
        )

    def subset(self, index: np.ndarray) -> "Corpus":
        index = np.asarray(index)
        return Corpus(
            name=self.name,
            ids=[self.ids[i] for i in index],
            texts=[self.texts[i] for i in index],
            labels=self.labels[index],
            label_names=list(self.label_names),
            descriptions=dict(self.descriptions),
            given_split=None if self.given_split is None else self.given_split[index],
            notes=dict(self.notes),
        )
