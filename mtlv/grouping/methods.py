"""Task clustering end to end: task features -> clusterer -> groups (k given or chosen), with the
elbow curve, the 2-D label map, the similarity matrix and the choice of k written beside them."""
from __future__ import annotations

import logging
from abc import abstractmethod
from pathlib import Path

import numpy as np

from mtlv.grouping.base import GroupingMethod
from mtlv.grouping.choose_k import choose_k
from mtlv.grouping.clusterers import as_groups, make_clusterer
from mtlv.grouping.kmedoids import format_elbow
from mtlv.grouping.plots import plot_elbow, plot_label_map, plot_matrix
from mtlv.errors import ConfigError
from mtlv.io import write_json, write_text
from mtlv.grouping.files import GroupingFiles

log = logging.getLogger(__name__)


class LearnedGrouping(GroupingMethod):
    learned = True
    feature = ""

    def __init__(self, method: str = "", k=3, k_max: int = 10, algorithm: str = "kmedoids",
                 k_select: str = "elbow", linkage: str = "average", backend: str = "kmedoids", seed: int = 0,
                 groups=None) -> None:
        super().__init__(method, k, groups)
        self.k_max, self.algorithm, self.k_select = int(k_max), algorithm, k_select
        self.linkage, self.backend, self.seed = linkage, backend, int(seed)

    def label(self) -> str:
        suffix = "" if self.algorithm == "kmedoids" else f"-{self.algorithm}"
        return f"{self.feature}-k{self.k}{suffix}"

    def describe(self) -> str:
        return f"label {self.feature}"

    def check(self, num_labels: int) -> None:
        if self.k == "auto":
            return
        if self.k is None or isinstance(self.k, bool) or not str(self.k).isdigit() or not 1 <= int(self.k) <= num_labels:
            raise ConfigError(f"clustering.k={self.k}: choose 1..{num_labels} (the number of labels) or auto")
        make_clusterer(self.algorithm, self.seed, self.backend, self.linkage)

    @abstractmethod
    def task_features(self, corpus, train_rows, out_dir: Path, cache_dir) -> tuple[np.ndarray, np.ndarray | None]:
        """(one feature row per label, the similarity matrix behind them or None)."""

    def groups(self, corpus, out_dir, cache_dir, train_rows=None) -> list[list[int]]:
        self.check(corpus.num_labels)
        if self.uses_documents and train_rows is None:
            raise ValueError(f"clustering={self.method} needs the fold's training documents")
        out, files = Path(out_dir), GroupingFiles(out_dir)
        X, similarity = self.task_features(corpus, train_rows, out, cache_dir)
        clusterer = make_clusterer(self.algorithm, self.seed, self.backend, self.linkage)
        fits = {k: clusterer.fit(X, k) for k in range(1, min(self.k_max, len(X)) + 1)}
        curve = [(k, cost) for k, (_, cost) in fits.items()]
        if self.k == "auto":
            k, why = choose_k(curve, X, {k: a for k, (a, _) in fits.items()}, self.k_select)
        else:
            k, why = int(self.k), "set by clustering.k"
        assignment = fits[k][0] if k in fits else clusterer.fit(X, k)[0]
        groups = as_groups(assignment)
        table = format_elbow(curve)
        log.info("task clustering (%s, %s, k=%s): elbow\n%s", self.feature, self.algorithm, k, table)
        log.info("k=%d: %s", k, why)
        write_text(files.elbow_txt, table + "\n")
        write_json(files.elbow_json, [{"k": kk, "sum_of_distances": d} for kk, d in curve])
        write_json(files.k_choice, {"k": k, "requested": str(self.k), "why": why, "feature": self.feature,
                                           "algorithm": self.algorithm})
        title = f"{corpus.name}: {self.describe()}"
        plot_elbow(curve, files.elbow_png, chosen_k=k, title=f"{title} ({self.algorithm})", note=why)
        cluster_of = {j: gi for gi, g in enumerate(groups) for j in g}
        plot_label_map(X, [cluster_of[j] for j in range(len(X))], corpus.label_names, files.label_map_png,
                       title=f"{title}, k={k}")
        if similarity is not None:
            import pandas as pd

            frame = pd.DataFrame(similarity, index=corpus.label_names, columns=corpus.label_names)
            write_text(files.similarity_csv, frame.to_csv(float_format="%.6f"))
            plot_matrix(similarity, corpus.label_names, files.similarity_png, title=title)
        return groups


class EmbeddingGrouping(LearnedGrouping):
    """Embeddings of each label's name or description (the reference study's task features)."""

    def __init__(self, feature: str = "name", encoder: str = "packaged:minilm", scale: str | None = "minmax",
                 random_init: dict | None = None, max_length: int = 64, **kwargs) -> None:
        super().__init__(**kwargs)
        self.feature, self.encoder, self.scale = feature, encoder, scale
        self.random_init, self.max_length = random_init, int(max_length)

    def describe(self) -> str:
        return f"label {self.feature} embeddings"

    def task_features(self, corpus, train_rows, out_dir, cache_dir):
        from mtlv.grouping.features import task_features

        X = task_features(corpus.label_names, corpus.descriptions, self.feature, self.encoder, scale=self.scale,
                          cache_dir=str(cache_dir) if cache_dir else None,
                          random_init=dict(self.random_init) if self.random_init else None,
                          max_length=self.max_length)
        return X, None


class CooccurrenceGrouping(LearnedGrouping):
    """Labels that are assigned to the same training documents belong together. Each label is
    described by its row of the co-occurrence distance matrix (its profile against every label)."""

    feature = "cooccurrence"
    uses_documents = True

    def __init__(self, measure: str = "npmi", **kwargs) -> None:
        super().__init__(**kwargs)
        self.measure = measure

    def describe(self) -> str:
        return f"label co-occurrence ({self.measure}, training documents)"

    def task_features(self, corpus, train_rows, out_dir, cache_dir):
        from mtlv.grouping.cooccurrence import cooccurrence_similarity, similarity_to_distance

        S = cooccurrence_similarity(corpus.labels[np.asarray(train_rows)], self.measure)
        return similarity_to_distance(S, self.measure), S


class AffinityGrouping(LearnedGrouping):
    """Labels whose gradients help each other in a short shared training run belong together
    (see affinity.py); each label is described by its row of the affinity distance matrix."""

    feature = "affinity"
    uses_documents = True

    def __init__(self, measure: str = "cosine", steps: int = 30, batch_size: int = 16, lr: float = 1e-4,
                 head_lr: float = 1e-3, encoder: str = "packaged:minilm", random_init: dict | None = None,
                 max_length: int = 64, pooling: str = "mean", device: str = "auto", **kwargs) -> None:
        super().__init__(**kwargs)
        self.measure, self.steps, self.batch_size, self.lr, self.head_lr = measure, steps, batch_size, lr, head_lr
        self.encoder, self.random_init, self.max_length, self.pooling = encoder, random_init, max_length, pooling
        self.device = device

    def describe(self) -> str:
        return f"task affinity ({self.measure}, {self.steps} steps on training documents)"

    def task_features(self, corpus, train_rows, out_dir, cache_dir):
        from mtlv.grouping.affinity import affinity_to_distance, cached_affinity

        rows = np.asarray(train_rows)
        # Cached per fold (the training rows' texts and labels + the run's options), so the cells of a
        # k / algorithm grid share one run; affinity_cost.json then says "cached": true.
        A, cost = cached_affinity([corpus.texts[i] for i in rows], corpus.labels[rows], self.encoder,
                                  cache_dir=cache_dir, measure=self.measure, steps=int(self.steps),
                                  batch_size=int(self.batch_size), lr=float(self.lr),
                                  head_lr=float(self.head_lr or self.lr), max_length=int(self.max_length),
                                  pooling=self.pooling, random_init=dict(self.random_init) if self.random_init else None,
                                  seed=self.seed, device=self.device)
        write_json(GroupingFiles(out_dir).affinity_cost, cost)
        return affinity_to_distance(A, self.measure), A
