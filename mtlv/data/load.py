"""A dataset's corpus as the config describes it (conf/dataset: its source, `limit` and seed), loaded and
checked once per process, its content fingerprint, and a fold's training documents. Here, on the data
floor, because the cells, the baselines, the study planner and the grouping preview all read it."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mtlv.checks import check_corpus
from mtlv.data.corpus import Corpus
from mtlv.errors import ConfigError
from mtlv.io import stable_hash


# Loaded corpora of this process and their content fingerprints, keyed by the dataset options and
# the data files' size and mtime: an edited file is read again, an untouched one is not.
_LOADED: dict[str, tuple[Corpus, str]] = {}


def _file_stats(cfg: DictConfig) -> list:
    stats = []
    for value in (cfg.dataset.get("path"), (cfg.dataset.get("source") or {}).get("descriptions_path")):
        path = Path(os.path.expanduser(str(value))) if value else None
        if path is not None and path.exists():
            stat = path.stat()
            stats.append([str(path), stat.st_size, stat.st_mtime_ns])
    return stats


def _loaded(cfg: DictConfig) -> tuple[Corpus, str]:
    key = stable_hash([OmegaConf.to_container(cfg.dataset, resolve=True), cfg.seed, _file_stats(cfg)])
    if key not in _LOADED:
        corpus = _read_corpus(cfg)
        _LOADED.clear()  # one dataset per process at a time; no pile-up in a long sweep
        _LOADED[key] = (corpus, corpus.fingerprint())
    return _LOADED[key]


def load_corpus(cfg: DictConfig) -> Corpus:
    return _loaded(cfg)[0]


def data_fingerprint(cfg: DictConfig) -> str:
    """Hash of the loaded corpus (texts, ids, labels, descriptions' names): part of every job and cell
    identity, so a data file edited in place retrains while an untouched one resumes."""
    return _loaded(cfg)[1]


def _read_corpus(cfg: DictConfig) -> Corpus:
    corpus = instantiate(cfg.dataset.source, _convert_="all")
    limit = cfg.dataset.get("limit")
    if limit is not None:
        if int(limit) < 10:
            raise ConfigError(f"dataset.limit={limit}: keep at least 10 documents (or null for all)")
        if int(limit) < len(corpus):
            keep = np.sort(np.random.default_rng(int(cfg.seed)).permutation(len(corpus))[: int(limit)])
            corpus = corpus.subset(keep)
    check_corpus(cfg, corpus)
    return corpus


def train_rows(cfg: DictConfig, corpus: Corpus):
    """The fold's training documents (the split is deterministic and cached, so every job agrees)."""
    from mtlv.data.splits import load_or_make_split

    return load_or_make_split(corpus, cfg.paths.cache_dir, seed=int(cfg.seed), **cfg.split).train
