"""A *cell* is one point of a study grid (dataset x split x model x architecture x grouping).
MTL/GMHL cells are one job; STL/GMTL cells are one job per group. Cells live in content-addressed
folders, so re-running a command finds the work already done (resume) and every job of a sweep
reads the same grouping."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock
from omegaconf import OmegaConf

from mtlv.grouping.base import GroupingMethod, method_from_config
from mtlv.data.corpus import Corpus
from mtlv.data.load import train_rows
from mtlv.errors import ConfigError
from mtlv.grouping.partition import TaskGrouping, all_in_one, from_spec, one_per_label
from mtlv.io import read_json, stable_hash, write_json
from mtlv.grouping.files import GroupingFiles
from mtlv.layout import CellLayout, JobLayout

log = logging.getLogger(__name__)


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


def finished_result(spec: "JobSpec", out: JobLayout | None = None, key: str | None = None) -> dict | None:
    """The saved result of the spec's job (or of its cell's job in `out`, whose key is `key`) when it finished
    with this config (resume), else None."""
    job = out or spec.job
    if spec.resume and job.result_json.exists():
        result = job.result()
        # A result reused from another job's model is not this job's own training: reuse_models=false retrains it.
        if result.get("key") == (key or spec.job_key) and (spec.config.get("reuse_models")
                                                            or "reused_from" not in result):
            return result
    return None


def grouping_method(spec: "JobSpec") -> GroupingMethod:
    """The cell's grouping method, made from its `clustering` node (`_target_`)."""
    return method_from_config(OmegaConf.create(spec.config["clustering"]))


def build_grouping(spec: "JobSpec", corpus: Corpus, out_dir: Path) -> TaskGrouping:
    grouping, placement, names = spec.arch["grouping"], spec.arch["placement"], corpus.label_names
    if grouping == "all":
        return all_in_one(names, placement)
    if grouping == "single":
        return one_per_label(names, placement)
    method = grouping_method(spec)
    # Data-driven task features see the training documents of the fold only, never val or test.
    rows = train_rows(corpus, spec.cache_dir, spec.seed, spec.split) if method.uses_documents else None
    if not method.learned:
        return from_spec(method.groups(corpus, out_dir, spec.cache_dir, rows), names, placement)
    return from_spec(cached_groups(spec, method, corpus, Path(out_dir), rows), names, placement)


def grouping_key(spec: "JobSpec", method: GroupingMethod) -> str:
    """What a learned grouping depends on: the clustering options, the encoder's files, the data, and for
    features of the documents the fold (split options and seed). Not the architecture: a GMHL and a GMTL
    cell with the same clustering share one grouping; label name/description embeddings also share it
    across folds."""
    from mtlv.grouping.features import _encoder_identity

    clustering = spec.config["clustering"]
    encoder = clustering.get("encoder")
    return stable_hash(["grouping", clustering, _encoder_identity(str(encoder)) if encoder else None,
                        spec.data_fingerprint, [spec.split, spec.seed] if method.uses_documents else None])


def cached_groups(spec: "JobSpec", method: GroupingMethod, corpus: Corpus, out_dir: Path, rows) -> list[list[int]]:
    """A learned grouping's groups, and its files (elbow, plots, k choice, similarity, affinity cost) in
    `out_dir`: computed once per `grouping_key` and copied from the cache for every other cell. Measured on
    one H200: a beyond-the-thesis grid computes 128 groupings for its GMHL sweep and the same 128 again for
    its GMTL sweep (0.5-1.4 s each, mostly plotting) while the GPU waits."""
    import shutil

    if not spec.cache_dir:
        return method.groups(corpus, out_dir, spec.cache_dir, rows)
    cached = Path(spec.cache_dir) / "groupings" / grouping_key(spec, method)
    done = cached / "groups.json"
    cached.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cached) + ".lock", timeout=3600):
        if done.exists():
            out_dir.mkdir(parents=True, exist_ok=True)
            for path in GroupingFiles(cached).written():
                shutil.copy2(path, out_dir / path.name)
            log.info("task groups as computed before for the same clustering options, data and fold (%s)", cached)
            return read_json(done)
        groups = [list(map(int, g)) for g in method.groups(corpus, out_dir, spec.cache_dir, rows)]
        cached.mkdir(parents=True, exist_ok=True)
        for path in GroupingFiles(out_dir).written():
            shutil.copy2(path, cached / path.name)
        write_json(done, groups)  # last: marks the cache entry complete
        return groups


def cell_grouping(spec: "JobSpec", corpus: Corpus) -> TaskGrouping:
    """The cell's grouping: computed once (under a lock), saved in the cell folder, then only read."""
    folder = spec.cell.layout
    folder.mkdir()
    path = folder.groups_yaml
    with FileLock(str(path) + ".lock", timeout=3600):
        if path.exists():
            saved = TaskGrouping.load(path)
            if list(saved.label_names) != list(corpus.label_names):
                raise ConfigError(f"{path} was written for other labels; delete it to recompute the grouping")
            return saved
        grouping = build_grouping(spec, corpus, folder.folder)
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
