"""Classical baseline: `python -m mtlv.baseline [dataset=openi] [experiment=openi_paper] [baseline.features=bow]
[baseline.classifier=random_forest]` (add `-m split.fold=0,1,2,3` for every fold).

TF-IDF or bag-of-words features with logistic regression or a random forest, scored, recorded and
resumed like a training job (mtlv/baselines/), so its rows sit beside the encoders' in the report.
"""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

import mtlv.config  # noqa: F401  (registers resolvers before Hydra composes)
from mtlv.cli import command_line_checked
from mtlv.config import CONF_DIR
from mtlv.errors import entry_point


@command_line_checked  # options Hydra types itself, before it composes
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="baseline")
@entry_point
def main(cfg: DictConfig) -> float:
    from mtlv.baselines.job import run_baseline

    return run_baseline(cfg)["test"]["f1_macro"]


if __name__ == "__main__":
    main()
