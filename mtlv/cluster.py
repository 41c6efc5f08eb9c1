"""Inspect task clustering alone: `python -m mtlv.cluster dataset=openi clustering=kmedoids_desc clustering.k=5`
prints the groups, the elbow table and the choice of k, and saves the elbow curve, the label map and
(for co-occurrence and affinity) the similarity matrix. Any clustering config works, e.g.
`clustering=cooccurrence clustering.k=auto clustering.algorithm=agglomerative`."""
from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

import mtlv.config  # noqa: F401
from mtlv.config import CONF_DIR
from mtlv.errors import ConfigError, entry_point


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
@entry_point
def main(cfg: DictConfig) -> None:
    from mtlv.cell import grouping_method, load_corpus, train_rows
    from mtlv.checks import check_options
    from mtlv.grouping import TaskGrouping
    from mtlv.io import read_json

    method = grouping_method(cfg)
    if not method.learned:
        raise ConfigError("mtlv.cluster needs a learned grouping: clustering=kmedoids_desc, kmedoids_label, "
                          f"cooccurrence or affinity (got clustering={cfg.clustering.method})")
    check_options(cfg)
    corpus = load_corpus(cfg)
    method.check(corpus.num_labels)
    out = Path(cfg.paths.output_dir) / "clustering" / f"{corpus.name}-{method.label()}"
    rows = train_rows(cfg, corpus) if method.uses_documents else None
    groups = method.groups(corpus, out, cfg.paths.cache_dir, rows)
    grouping = TaskGrouping(tuple(corpus.label_names), tuple(tuple(g) for g in groups), "models")
    grouping.save(out / "groups.yaml")
    choice = read_json(out / "k_choice.json")
    print(f"\n{corpus.name}: {corpus.num_labels} labels in {len(groups)} groups "
          f"({method.algorithm} on {method.describe()})")
    for i, names in enumerate(grouping.named_groups()):
        print(f"  group {i}: {', '.join(names)}")
    print(f"\nk = {choice['k']}: {choice['why']}")
    print("\nelbow (sum of distances to medoids):\n" + (out / "elbow.txt").read_text())
    saved = [out / n for n in ("groups.yaml", "elbow.png", "label_map.png", "task_similarity.csv",
                               "task_similarity.png", "affinity_cost.json") if (out / n).exists()]
    print("saved: " + ", ".join(str(p) for p in saved))
    option = {"name": "kmedoids_label", "description": "kmedoids_desc"}.get(method.feature, method.feature)
    algorithm = "" if method.algorithm == "kmedoids" else f" clustering.algorithm={method.algorithm}"
    print(f"train with these groups: python -m mtlv.train dataset={cfg.dataset.name} arch=gmtl "
          f"clustering={option} clustering.k={choice['k']}{algorithm}")


if __name__ == "__main__":
    main()
