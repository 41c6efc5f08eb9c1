"""Inspect task clustering alone: `python -m mtlv.cluster dataset=openi clustering=kmedoids_desc clustering.k=5`
prints the groups and the elbow table and saves the elbow curve and the label map."""
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
    from mtlv.cell import load_corpus
    from mtlv.checks import check_grouping_options, check_options
    from mtlv.clustering.tasks import cluster_tasks
    from mtlv.grouping import TaskGrouping

    if cfg.clustering.method != "kmedoids":
        raise ConfigError("mtlv.cluster needs clustering=kmedoids_desc or clustering=kmedoids_label "
                          f"(got clustering={cfg.clustering.method})")
    check_options(cfg)
    corpus = load_corpus(cfg)
    check_grouping_options(cfg, corpus.num_labels)
    k = cfg.clustering.k
    out = Path(cfg.paths.output_dir) / "clustering" / f"{corpus.name}-{cfg.clustering.feature}-k{k}"
    groups = cluster_tasks(corpus, cfg.clustering, out, cfg.paths.cache_dir)
    grouping = TaskGrouping(tuple(corpus.label_names), tuple(tuple(g) for g in groups), "models")
    grouping.save(out / "groups.yaml")
    print(f"\n{corpus.name}: {corpus.num_labels} labels in {len(groups)} groups "
          f"(k-medoids on label {cfg.clustering.feature} embeddings from {cfg.clustering.encoder})")
    for i, names in enumerate(grouping.named_groups()):
        print(f"  group {i}: {', '.join(names)}")
    print("\nelbow (sum of distances to medoids):\n" + (out / "elbow.txt").read_text())
    print(f"saved: {out / 'groups.yaml'}, {out / 'elbow.png'}, {out / 'label_map.png'}")
    print(f"train with these groups: python -m mtlv.train dataset={cfg.dataset.name} arch=gmtl "
          f"clustering={'kmedoids_desc' if cfg.clustering.feature == 'description' else 'kmedoids_label'} "
          f"clustering.k={k}")


if __name__ == "__main__":
    main()
