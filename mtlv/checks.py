"""Config checks that run before any data is tokenized or any model is loaded."""
from __future__ import annotations

import logging

from omegaconf import DictConfig

from mtlv.errors import ConfigError
from mtlv.models.encoder import model_max_length

log = logging.getLogger(__name__)


def check_config(cfg: DictConfig, num_labels: int) -> None:
    for key in ("batch_size", "eval_batch_size"):
        if int(cfg.data[key]) < 1:
            raise ConfigError(f"data.{key}={cfg.data[key]}: must be at least 1")
    if int(cfg.trainer.max_epochs) < 1:
        raise ConfigError(f"trainer.max_epochs={cfg.trainer.max_epochs}: must be at least 1")
    if cfg.get("split") is not None:  # before the sweep starts its jobs, not in each of them
        from mtlv.data.splits import validate_split_options

        validate_split_options(cfg.split.folds, cfg.split.fold, cfg.split.test_size, cfg.split.val_size)
    check_max_length(cfg)
    check_grouping_options(cfg, num_labels)


def check_max_length(cfg: DictConfig) -> None:
    wanted = int(cfg.model.max_length)
    allowed = model_max_length(cfg.model.name_or_path, cfg.model.module.random_init,
                               bool(cfg.model.get("trust_remote_code", False)))
    if not 8 <= wanted <= allowed:
        raise ConfigError(f"model.max_length={wanted}: {cfg.model.name_or_path} accepts 8..{allowed} tokens; "
                          f"set model.max_length={min(max(wanted, 8), allowed)}")


def check_grouping_options(cfg: DictConfig, num_labels: int) -> None:
    from mtlv.cell import grouping_method
    from mtlv.clustering.base import CHOICES, NoGrouping

    arch, clustering = cfg.arch, cfg.clustering
    method = grouping_method(cfg)
    if arch.grouping == "clustering":
        if isinstance(method, NoGrouping):
            raise ConfigError(f"arch={arch.name} trains task groups, but clustering=none: choose {CHOICES}")
        method.check(num_labels)
    else:
        ignored = [f"clustering.{key}={clustering[key]}" for key in ("k", "groups") if clustering.get(key)]
        if not isinstance(method, NoGrouping) or ignored:
            what = ", ".join(ignored) or f"clustering={clustering.method}"
            fixed = "one group of all labels" if arch.grouping == "all" else "one group per label"
            log.warning("%s is ignored: arch=%s always uses %s", what, arch.name, fixed)
    if arch.placement == "heads" and cfg.get("group_index") is not None:
        log.warning("group_index=%s is ignored: arch=%s trains one model for all groups", cfg.group_index, arch.name)
