"""Task clustering end to end: label texts -> embeddings -> k-medoids groups, elbow and plots."""
from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from mtlv.clustering.features import task_features
from mtlv.clustering.kmedoids import cluster_groups, elbow, fit_kmedoids, format_elbow
from mtlv.clustering.plots import plot_elbow, plot_label_map
from mtlv.data.corpus import Corpus
from mtlv.io import write_json, write_text

log = logging.getLogger(__name__)


def cluster_tasks(corpus: Corpus, ccfg: DictConfig, out_dir: str | Path, cache_dir: str | Path | None) -> list[list[int]]:
    """k-medoids groups of the corpus's labels; writes elbow.png/.txt/.json and label_map.png to out_dir."""
    out = Path(out_dir)
    random_init = dict(ccfg.random_init) if ccfg.get("random_init") else None
    features = task_features(corpus.label_names, corpus.descriptions, ccfg.feature, ccfg.encoder,
                             scale=ccfg.scale, cache_dir=str(cache_dir) if cache_dir else None,
                             random_init=random_init, max_length=ccfg.max_length)
    groups = cluster_groups(features, int(ccfg.k), seed=int(ccfg.seed), backend=ccfg.backend)
    curve = elbow(features, int(ccfg.k_max), seed=int(ccfg.seed), backend=ccfg.backend)
    table = format_elbow(curve)
    log.info("task clustering (%s, k=%s): elbow\n%s", ccfg.feature, ccfg.k, table)
    write_text(out / "elbow.txt", table + "\n")
    write_json(out / "elbow.json", [{"k": k, "sum_of_distances": d} for k, d in curve])
    title = f"{corpus.name}: label {ccfg.feature} embeddings"
    plot_elbow(curve, out / "elbow.png", chosen_k=int(ccfg.k), title=title)
    assignment, _, _ = fit_kmedoids(features, int(ccfg.k), seed=int(ccfg.seed), backend=ccfg.backend)
    cluster_of = {j: gi for gi, g in enumerate(groups) for j in g}
    plot_label_map(features, [cluster_of[j] for j in range(len(assignment))], corpus.label_names,
                   out / "label_map.png", title=f"{title}, k={ccfg.k}")
    return groups
