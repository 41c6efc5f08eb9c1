"""`python -m mtlv.cluster`: a learned grouping computed alone (no training), its groups, elbow table and
choice of k printed, its plots saved, and the `mtlv.train` command that trains with these groups."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mtlv.errors import ConfigError


def preview_grouping(cfg: DictConfig) -> None:
    from mtlv.checks import check_options
    from mtlv.grouping.partition import TaskGrouping
    from mtlv.io import read_json
    from mtlv.grouping.base import method_from_config
    from mtlv.run.cell import load_corpus, train_rows
    from mtlv.grouping.files import GroupingFiles

    method = method_from_config(cfg.clustering)
    if not method.learned:
        raise ConfigError("mtlv.cluster needs a learned grouping: clustering=kmedoids_desc, kmedoids_label, "
                          f"cooccurrence or affinity (got clustering={cfg.clustering.method})")
    check_options(cfg)
    corpus = load_corpus(cfg)
    method.check(corpus.num_labels)
    out = Path(cfg.paths.output_dir) / "clustering" / f"{corpus.name}-{method.label()}"
    files = GroupingFiles(out)
    rows = train_rows(cfg, corpus) if method.uses_documents else None
    groups = method.groups(corpus, out, cfg.paths.cache_dir, rows)
    grouping = TaskGrouping(tuple(corpus.label_names), tuple(tuple(g) for g in groups), "models")
    grouping.save(files.groups_yaml)
    choice = read_json(files.k_choice)
    print(f"\n{corpus.name}: {corpus.num_labels} labels in {len(groups)} groups "
          f"({method.algorithm} on {method.describe()})")
    for i, names in enumerate(grouping.named_groups()):
        print(f"  group {i}: {', '.join(names)}")
    print(f"\nk = {choice['k']}: {choice['why']}")
    print("\nelbow (sum of distances to medoids):\n" + files.elbow_txt.read_text())
    print("saved: " + ", ".join(str(p) for p in files.saved()))
    option = {"name": "kmedoids_label", "description": "kmedoids_desc"}.get(method.feature, method.feature)
    algorithm = "" if method.algorithm == "kmedoids" else f" clustering.algorithm={method.algorithm}"
    print(f"train with these groups: python -m mtlv.train dataset={cfg.dataset.name} arch=gmtl "
          f"clustering={option} clustering.k={choice['k']}{algorithm}")

