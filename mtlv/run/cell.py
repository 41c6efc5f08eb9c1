"""A *cell* is one point of a study grid (dataset x split x model x architecture x grouping).
MTL/GMHL cells are one job; STL/GMTL cells are one job per group. Cells live in content-addressed
folders, so re-running a command finds the work already done (resume) and every job of a sweep
reads the same grouping."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock
from omegaconf import DictConfig, OmegaConf, open_dict

from mtlv.grouping.base import GroupingMethod, method_from_config
from mtlv.config import identity
from mtlv.data.corpus import Corpus
from mtlv.data.load import data_fingerprint, train_rows
from mtlv.errors import ConfigError
from mtlv.grouping.partition import TaskGrouping, all_in_one, from_spec, one_per_label
from mtlv.io import read_json, stable_hash, write_json
from mtlv.grouping.files import GroupingFiles
from mtlv.layout import CellLayout, JobLayout

log = logging.getLogger(__name__)


def cell_identity(cfg: DictConfig) -> dict:
    data = identity(cfg)
    if cfg.arch.grouping != "clustering":  # clustering options cannot change an mtl/stl cell
        data.pop("clustering", None)
    data["data_fingerprint"] = data_fingerprint(cfg)
    return data


def cell_key(cfg: DictConfig) -> str:
    return stable_hash(cell_identity(cfg))


def run_name(cfg: DictConfig) -> str:
    parts = [cfg.arch.name, cfg.model.name]
    if cfg.arch.grouping == "clustering":
        parts.append(method_from_config(cfg.clustering).label())
    if cfg.split.folds is not None:
        parts.append(f"fold{cfg.split.fold}")
    return "-".join(str(p) for p in parts)


@dataclass(frozen=True)
class Cell:
    """A cell's name and folder, computed once (the key hashes the whole config and the data)."""

    run_name: str
    key: str
    layout: CellLayout
    placement: str

    @property
    def folder(self) -> Path:
        return self.layout.folder

    def job(self, group_index: int | None) -> JobLayout:
        """The folder of the cell's job (`group_index`: the group of an STL/GMTL job)."""
        return self.layout.job(self.placement, group_index)


def open_cell(cfg: DictConfig) -> Cell:
    name = run_name(cfg)
    key = cell_key(cfg)
    folder = CellLayout(Path(cfg.paths.runs_dir) / cfg.dataset.name / f"{name}-{key}")
    return Cell(name, key, folder, cfg.arch.placement)


def job_config(cfg: DictConfig, group_index: int | None) -> DictConfig:
    """The config of the cell's job for `group_index` (what the launcher composes with `group_index=i`)."""
    if group_index == cfg.get("group_index"):
        return cfg
    job = cfg.copy()
    with open_dict(job):
        job.group_index = group_index
    return job


def job_key(cfg: DictConfig) -> str:
    return job_keys(cfg, [cfg.get("group_index")])[0]


def job_keys(cfg: DictConfig, group_indices) -> list[str]:
    """The keys of the cell's jobs for these groups. The config's identity leaves `group_index` out, so it is
    computed once for all of them (~10 ms each: a GMTL grid's sweep checks ~500 jobs before it launches)."""
    base, data = identity(cfg), data_fingerprint(cfg)
    return [stable_hash([base, i, data]) for i in group_indices]


def finished_result(cfg: DictConfig, out: Path | JobLayout, key: str | None = None) -> dict | None:
    """The saved result of the job of `cfg` in `out` when it finished with this config (resume), else None."""
    job = JobLayout(out)
    if cfg.resume and job.result_json.exists():
        result = job.result()
        # A result reused from another job's model is not this job's own training: reuse_models=false retrains it.
        if result.get("key") == (key or job_key(cfg)) and (cfg.get("reuse_models") or "reused_from" not in result):
            return result
    return None


def cell_dir(cfg: DictConfig) -> Path:
    return open_cell(cfg).folder


def job_dir(cfg: DictConfig) -> Path:
    return open_cell(cfg).job(cfg.group_index).folder


def build_grouping(cfg: DictConfig, corpus: Corpus, out_dir: Path) -> TaskGrouping:
    grouping, placement, names = cfg.arch.grouping, cfg.arch.placement, corpus.label_names
    if grouping == "all":
        return all_in_one(names, placement)
    if grouping == "single":
        return one_per_label(names, placement)
    method = method_from_config(cfg.clustering)
    # Data-driven task features see the training documents of the fold only, never val or test.
    rows = train_rows(cfg, corpus) if method.uses_documents else None
    if not method.learned:
        return from_spec(method.groups(corpus, out_dir, cfg.paths.cache_dir, rows), names, placement)
    return from_spec(cached_groups(cfg, method, corpus, Path(out_dir), rows), names, placement)


def grouping_key(cfg: DictConfig, method: GroupingMethod) -> str:
    """What a learned grouping depends on: the clustering options, the encoder's files, the data, and for
    features of the documents the fold (split options and seed). Not the architecture: a GMHL and a GMTL
    cell with the same clustering share one grouping; label name/description embeddings also share it
    across folds."""
    from mtlv.grouping.features import _encoder_identity

    clustering = OmegaConf.to_container(cfg.clustering, resolve=True)
    encoder = clustering.get("encoder")
    return stable_hash(["grouping", clustering, _encoder_identity(str(encoder)) if encoder else None,
                        data_fingerprint(cfg),
                        [OmegaConf.to_container(cfg.split, resolve=True), int(cfg.seed)]
                        if method.uses_documents else None])


def cached_groups(cfg: DictConfig, method: GroupingMethod, corpus: Corpus, out_dir: Path, rows) -> list[list[int]]:
    """A learned grouping's groups, and its files (elbow, plots, k choice, similarity, affinity cost) in
    `out_dir`: computed once per `grouping_key` and copied from the cache for every other cell. Measured on
    one H200: a beyond-the-thesis grid computes 128 groupings for its GMHL sweep and the same 128 again for
    its GMTL sweep (0.5-1.4 s each, mostly plotting) while the GPU waits."""
    import shutil

    if not cfg.paths.cache_dir:
        return method.groups(corpus, out_dir, cfg.paths.cache_dir, rows)
    cached = Path(cfg.paths.cache_dir) / "groupings" / grouping_key(cfg, method)
    done = cached / "groups.json"
    cached.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cached) + ".lock", timeout=3600):
        if done.exists():
            out_dir.mkdir(parents=True, exist_ok=True)
            for path in GroupingFiles(cached).written():
                shutil.copy2(path, out_dir / path.name)
            log.info("task groups as computed before for the same clustering options, data and fold (%s)", cached)
            return read_json(done)
        groups = [list(map(int, g)) for g in method.groups(corpus, out_dir, cfg.paths.cache_dir, rows)]
        cached.mkdir(parents=True, exist_ok=True)
        for path in GroupingFiles(out_dir).written():
            shutil.copy2(path, cached / path.name)
        write_json(done, groups)  # last: marks the cache entry complete
        return groups


def cell_grouping(cfg: DictConfig, corpus: Corpus, cell: Cell | None = None) -> TaskGrouping:
    """The cell's grouping: computed once (under a lock), saved in the cell folder, then only read."""
    folder = (cell or open_cell(cfg)).layout
    folder.mkdir()
    path = folder.groups_yaml
    with FileLock(str(path) + ".lock", timeout=3600):
        if path.exists():
            saved = TaskGrouping.load(path)
            if list(saved.label_names) != list(corpus.label_names):
                raise ConfigError(f"{path} was written for other labels; delete it to recompute the grouping")
            return saved
        grouping = build_grouping(cfg, corpus, folder.folder)
        grouping.save(path)
        log.info("task groups (%d): %s", grouping.num_groups, grouping.named_groups())
        return grouping


def grouping_params(folder: Path) -> dict:
    """The learned grouping's chosen k (and why) and the affinity run's cost, as MLflow params."""
    params, files = {}, GroupingFiles(folder)
    if files.k_choice.exists():
        choice = read_json(files.k_choice)
        params.update({"clustering.chosen_k": choice["k"], "clustering.k_reason": choice["why"]})
    if files.affinity_cost.exists():
        cost = read_json(files.affinity_cost)
        params.update({"clustering.affinity_steps": cost["steps"],
                       "clustering.affinity_seconds": round(float(cost["seconds"]), 2),
                       "clustering.affinity_device": cost.get("device", "cpu"),
                       "clustering.affinity_cached": bool(cost.get("cached", False))})
    return params
