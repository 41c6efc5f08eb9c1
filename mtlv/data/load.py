"""A dataset's corpus as the config describes it (conf/dataset: its source, `limit` and seed), loaded and
checked once per process, its content fingerprint, and a fold's training documents. Here, on the data
floor, because the cells, the baselines, the study planner and the grouping preview all read it."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from mtlv.data.checks import check_corpus
from mtlv.data.corpus import Corpus
from mtlv.errors import ConfigError
from mtlv.io import stable_hash


# Loaded corpora of this process and their content fingerprints, keyed by the dataset options and
# the data files' size and mtime: an edited file is read again, an untouched one is not. Two are kept: the
# corpus a job trains on and, with dataset.limit, the whole file its `data_name` comes from.
_LOADED: dict[str, tuple[Corpus, str]] = {}
_KEEP = 2


def _file_stats(cfg: DictConfig) -> list:
    stats = []
    for value in (cfg.dataset.get("path"), (cfg.dataset.get("source") or {}).get("descriptions_path")):
        path = Path(os.path.expanduser(str(value))) if value else None
        if path is not None and path.exists():
            stat = path.stat()
            stats.append([str(path), stat.st_size, stat.st_mtime_ns])
    return stats


def _loaded(cfg: DictConfig) -> tuple[Corpus, str]:
    seed = cfg.seed if cfg.dataset.get("limit") is not None else None  # the seed only draws a limit's documents
    key = stable_hash([OmegaConf.to_container(cfg.dataset, resolve=True), seed, _file_stats(cfg)])
    if key not in _LOADED:
        corpus = _read_corpus(cfg)
        while len(_LOADED) >= _KEEP:  # no pile-up in a long sweep
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = (corpus, corpus.fingerprint())
    _LOADED[key] = _LOADED.pop(key)  # the latest used is the last one dropped
    return _LOADED[key]


def load_corpus(cfg: DictConfig) -> Corpus:
    return _loaded(cfg)[0]


def data_fingerprint(cfg: DictConfig) -> str:
    """Hash of the loaded corpus (texts, ids, labels, descriptions' names): part of every job and cell
    identity, so a data file edited in place retrains while an untouched one resumes."""
    return _loaded(cfg)[1]


# The `dataset.name` conf/dataset/csv.yaml gives every user table. It names no data: as an MLflow experiment and
# report section, every CSV was one, and results of different files were compared and deduplicated together.
USER_TABLE = "csv"


def data_name(cfg: DictConfig) -> str:
    """The name a dataset's results are kept under: the `dataset` tag of its runs, which keys the report's
    sections, deduplication and comparisons (baselines included), and its MLflow experiment unless
    `logger.experiment_name` is set. `dataset.name` where it names data (openi, ohsumed, demo: as before, so
    their finished work resumes; a user's own `dataset.name=...`); for a user table left at `csv`, the file's
    name and the first 8 characters of the whole file's data fingerprint (`notes.csv` -> `notes-1a2b3c4d`):
    two files, or a file edited in place, never share a section, while `dataset.limit` subsets of one file
    (drawn per seed) do."""
    name = str(cfg.dataset.name)
    if name != USER_TABLE:
        return name
    whole = cfg
    if cfg.dataset.get("limit") is not None:
        whole = cfg.copy()
        with open_dict(whole):
            whole.dataset.limit = None
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(cfg.dataset.path)).stem).strip("._-")[:60] or "data"
    return f"{stem}-{data_fingerprint(whole)[:8]}"


def experiment_name(cfg: DictConfig) -> str:
    """The MLflow experiment of a run: `logger.experiment_name` where it was set to something other than the
    dataset's name (its default, `${dataset.name}`), else `data_name`."""
    name = str(cfg.logger.experiment_name)
    return data_name(cfg) if name == str(cfg.dataset.name) else name


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


def train_rows(corpus: Corpus, cache_dir: str | None, seed: int, split: dict):
    """The fold's training documents (the split is deterministic and cached, so every job agrees); `split`:
    the split options (`cfg.split`)."""
    from mtlv.data.splits import load_or_make_split

    return load_or_make_split(corpus, cache_dir, seed=int(seed), **split).train
