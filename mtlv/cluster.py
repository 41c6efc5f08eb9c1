"""Inspect task clustering alone: `python -m mtlv.cluster dataset=openi clustering=kmedoids_desc clustering.k=5`
prints the groups, the elbow table and the choice of k, and saves the elbow curve, the label map and
(for co-occurrence and affinity) the similarity matrix. Any clustering config works, e.g.
`clustering=cooccurrence clustering.k=auto clustering.algorithm=agglomerative`."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

import mtlv.config  # noqa: F401
from mtlv.config import CONF_DIR
from mtlv.errors import entry_point


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
@entry_point
def main(cfg: DictConfig) -> None:
    from mtlv.grouping.preview import preview_grouping

    preview_grouping(cfg)


if __name__ == "__main__":
    main()
