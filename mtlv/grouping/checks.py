"""Checks of the grouping options (clustering.*): the shape of given groups and the affinity device before
any data is loaded (check_options), and, once the number of labels is known, the method's own check or a
warning that the architecture ignores them (check_config). The method's choices and its checks are the
method's (mtlv/grouping/base.py); this file only reads them."""
from __future__ import annotations

import logging

from omegaconf import DictConfig, ListConfig, OmegaConf

from mtlv.errors import ConfigError, in_sweep_job
from mtlv.options import MISSING, config_value

log = logging.getLogger(__name__)


def check_groups_spec(cfg: DictConfig) -> None:
    groups = config_value(cfg, "clustering.groups")
    if groups is MISSING or groups is None:
        return
    if not isinstance(groups, ListConfig) or not all(isinstance(g, ListConfig) for g in groups):
        raise ConfigError(f"clustering.groups={_show(groups)}: give a list of groups, each a list of label names "
                          "or indices, e.g. clustering.groups=[[0,1],[2,3,4]] (one group of all labels: "
                          "arch=mtl)")
    empty = [i for i, group in enumerate(groups) if len(group) == 0]
    if empty:  # dropped, 3 groups would silently become 2
        kept = OmegaConf.create([g for g in groups if len(g)])
        raise ConfigError(f"clustering.groups={_show(groups)}: group {', '.join(map(str, empty))} "
                          f"{'is' if len(empty) == 1 else 'are'} empty; every group needs at least one label: remove "
                          f"it (clustering.groups={_show(kept)}) or put labels in it")


def _show(value: object) -> str:
    return str(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value).replace(" ", "")


def check_affinity_device(cfg: DictConfig) -> None:
    """clustering.device (clustering=affinity): auto, or a device this machine has."""
    device = config_value(cfg, "clustering.device")
    if device is not MISSING:
        from mtlv.grouping.affinity import resolve_device

        resolve_device(device)


def check_grouping_options(cfg: DictConfig, num_labels: int, say_ignored: bool = True) -> None:
    from mtlv.grouping.base import NoGrouping, choices_text, method_from_config

    arch, clustering = cfg.arch, cfg.clustering
    method = method_from_config(clustering)
    if arch.grouping == "clustering":
        if isinstance(method, NoGrouping):
            raise ConfigError(f"arch={arch.name} trains task groups, but clustering=none: choose {choices_text()}")
        method.check(num_labels)
    else:
        ignored = [f"clustering.{key}={clustering[key]}" for key in ("k", "groups") if clustering.get(key)]
        # in a sweep's job the sweeper has said it once for all its cells (mtlv_sweeper: cells folded)
        if (not isinstance(method, NoGrouping) or ignored) and say_ignored and not in_sweep_job():
            what = ", ".join(ignored) or f"clustering={clustering.method}"
            fixed = "one group of all labels" if arch.grouping == "all" else "one group per label"
            log.warning("%s is ignored: arch=%s always uses %s", what, arch.name, fixed)
    if arch.placement == "heads" and cfg.get("group_index") is not None:
        log.warning("group_index=%s is ignored: arch=%s trains one model for all groups", cfg.group_index, arch.name)
