"""What the sweeper does around Hydra's launcher: before the jobs of a one-model-per-group cell
start, compute its grouping once and open its parent MLflow run; after they finish, aggregate."""
from __future__ import annotations

import logging

from omegaconf import DictConfig

from mtlv import tracking
from mtlv.cell import cell_dir, cell_grouping, grouping_params, load_corpus, run_name
from mtlv.checks import check_config, check_options
from mtlv.config import flatten, to_container
from mtlv.grouping import TaskGrouping
from mtlv.io import write_json

log = logging.getLogger(__name__)


def prepare_tracking(cfg: DictConfig) -> str | None:
    """Create the store and experiment in this process, so parallel jobs never race to create them."""
    if cfg.get("logger") is None:
        return None
    uri = tracking.resolve_uri(cfg.tracking.uri, cfg.tracking.fallback_uri)
    tracking.experiment_id(uri, cfg.logger.experiment_name, cfg.tracking.artifact_location)
    return uri


def prepare_cell(cfg: DictConfig) -> TaskGrouping:
    check_options(cfg)
    corpus = load_corpus(cfg)
    check_config(cfg, corpus.num_labels)
    grouping = cell_grouping(cfg, corpus)
    folder = cell_dir(cfg)
    uri = prepare_tracking(cfg)
    parent = folder / "parent_run.json"
    if uri and not (parent.exists() and cfg.resume):
        exp = tracking.experiment_id(uri, cfg.logger.experiment_name, cfg.tracking.artifact_location)
        tracking.end_orphans(uri, exp, {"mtlv.cell_dir": str(folder), "mtlv.role": "parent"})
        run_id = tracking.create_run(uri, exp, run_name(cfg), {"arch": cfg.arch.name, "dataset": cfg.dataset.name,
                                                               "cell": folder.name, "mtlv.cell_dir": str(folder),
                                                               "mtlv.role": "parent"})
        params = flatten({k: v for k, v in to_container(cfg).items() if k not in ("hydra", "group_index")})
        params.update({f"group.{i}": ", ".join(g) for i, g in enumerate(grouping.named_groups())})
        params["num_groups"] = grouping.num_groups
        params.update(grouping_params(folder))
        params.update({f"env.{k}": v for k, v in tracking.run_environment().items()})
        artifacts = [folder / "groups.yaml"] + sorted(folder.glob("elbow.*")) + sorted(folder.glob("*.png"))
        artifacts += [p for n in ("k_choice.json", "task_similarity.csv", "affinity_cost.json")
                      if (p := folder / n).exists()]
        tracking.log_to_run(uri, run_id, params=params, artifacts=artifacts)
        write_json(parent, {"run_id": run_id, "tracking_uri": uri})
    log.info("%s: %d group jobs -> %s", run_name(cfg), grouping.num_groups, folder)
    return grouping

