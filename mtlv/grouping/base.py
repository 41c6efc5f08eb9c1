"""Grouping methods: where a clustering architecture's task groups come from.

One interface, chosen with `_target_` in conf/clustering/*.yaml: no grouping (mtl/stl), groups
given by the user, or groups learned by clustering task features (label name/description
embeddings, label co-occurrence, gradient affinity; see methods.py).
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from mtlv.errors import ConfigError

log = logging.getLogger(__name__)


class GroupingMethod(ABC):
    learned = False          # groups found by clustering task features
    uses_documents = False   # needs the fold's training documents (never validation or test)

    def __init__(self, method: str = "", k=None, groups=None) -> None:
        self.method, self.k, self.spec = method, k, groups

    def label(self) -> str:
        """Short name for run names, e.g. 'description-k3'."""
        return self.method

    def check(self, num_labels: int) -> None:
        """Raise ConfigError for options that cannot work, before any data is tokenized."""

    @abstractmethod
    def groups(self, corpus, out_dir: Path, cache_dir: str | Path | None,
               train_rows: np.ndarray | None = None) -> list[list[int]]:
        """Label indices per group; may write figures and tables to out_dir."""


class NoGrouping(GroupingMethod):
    """clustering=none: the architecture fixes the groups (mtl: one group; stl: one per label)."""

    def check(self, num_labels: int) -> None:
        raise ConfigError(f"this architecture trains task groups, but clustering=none: choose {choices_text()}")

    def groups(self, corpus, out_dir, cache_dir, train_rows=None) -> list[list[int]]:
        self.check(corpus.num_labels)
        return []


class GivenGroups(GroupingMethod):
    """clustering=given: the user's own groups (label names or indices)."""

    def check(self, num_labels: int) -> None:
        if self.k is not None:
            log.warning("clustering.k=%s is ignored: clustering=given takes the groups from clustering.groups", self.k)

    def groups(self, corpus, out_dir, cache_dir, train_rows=None) -> list[list[int]]:
        from mtlv.grouping.partition import resolve_groups

        if not self.spec:
            raise ConfigError("clustering=given needs clustering.groups, e.g. clustering.groups=[[0,1],[2,3,4]] "
                              "(label names or indices; every label exactly once)")
        return resolve_groups(self.spec, corpus.label_names, given=True)


def method_from_config(clustering) -> GroupingMethod:
    """The grouping method a clustering config (conf/clustering/*.yaml, its `_target_`) describes."""
    from hydra.utils import instantiate

    return instantiate(clustering, _convert_="all")


# The grouping methods one can choose are the options of conf/clustering/: a method is its class (`_target_`)
# plus its YAML, and nothing else lists them (the checks' and `mtlv.cluster`'s error texts read them here).
def grouping_methods(learned: bool | None = None) -> list[str]:
    """The `clustering=<name>` options that make task groups (all but `none`): learned ones first, then the
    others, each sorted; `learned=True`/`False`: only those whose groups are learned / are not."""
    from hydra.utils import get_class

    from mtlv.config import CONF_DIR

    found = {}
    for path in sorted((CONF_DIR / "clustering").glob("*.yaml")):
        cls = get_class(_target_of(path))
        if not issubclass(cls, NoGrouping):
            found[path.stem] = bool(cls.learned)
    return [name for flag in (True, False) if learned in (None, flag) for name, is_learned in found.items()
            if is_learned == flag]


def choices_text(learned: bool | None = None) -> str:
    """'clustering=a, b or c' (`grouping_methods`), for error messages."""
    names = grouping_methods(learned)
    return "clustering=" + (", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names))


def _target_of(path: Path) -> str:
    """A clustering YAML's `_target_`, or that of the option it extends (its defaults list, e.g. kmedoids_desc)."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if "_target_" in data:
        return str(data["_target_"])
    for entry in data.get("defaults") or []:
        if isinstance(entry, str) and entry != "_self_":
            return _target_of(path.with_name(f"{entry}.yaml"))
    raise ConfigError(f"{path}: no _target_ (the grouping method's class), itself or in its defaults")
