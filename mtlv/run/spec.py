"""A job resolved once: `JobSpec.resolve(cfg)` at each entry (mtlv.train, the sweeper, an in-process cell's
groups, the study planner) runs the option, corpus and config checks, then holds what the code below
reads: the job's resolved config and identity, its cell/job/model keys and folders, where it is tracked
(`TrackingSpec`) and how it is launched (`LaunchSpec`). Below the entry, functions take the spec or the
piece they need; `cfg` itself only instantiates the data, model, trainer, callback and logger nodes.
(Like Dora's `XP`: a config's signature and folder, made once and handed around.)
"""
from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mtlv import launch, tracking
from mtlv.config import identity_of, to_container, used_of
from mtlv.data.corpus import Corpus
from mtlv.io import stable_hash
from mtlv.layout import CellLayout, JobLayout, ModelRegistry
from mtlv.run.cell import Cell
from mtlv.run.reuse import job_model_keys, model_base, model_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackingSpec:
    """Where a job's runs go: the store's URI (the configured one, or its fallback when that cannot be
    reached) and the experiment's id, each resolved once, when first read (a finished job never asks)."""

    configured_uri: str
    fallback_uri: str | None
    experiment: str                 # the experiment's name (`data.load.experiment_name`)
    artifact_location: str | None

    @cached_property
    def uri(self) -> str:
        return tracking.resolve_uri(self.configured_uri, self.fallback_uri)

    @cached_property
    def experiment_id(self) -> str:
        """Created here when missing: the sweeper reads it before its jobs start, so they never race to."""
        return tracking.experiment_id(self.uri, self.experiment, self.artifact_location)

    @classmethod
    def resolve(cls, cfg: DictConfig) -> TrackingSpec | None:
        """None without a logger (`logger=null`: nothing is tracked)."""
        if cfg.get("logger") is None:
            return None
        from mtlv.data.load import experiment_name

        return cls(str(cfg.tracking.uri), cfg.tracking.get("fallback_uri"), experiment_name(cfg),
                   cfg.tracking.get("artifact_location"))


@dataclass(frozen=True)
class LaunchSpec:
    """How the job is launched (mtlv/launch.py has the facts): the cores it shares, the joblib launcher's
    parallel jobs, its torch threads, whether a cluster runs it, the GPU a sweep's job is pinned to."""

    cores: int
    workers: int | None = None      # joblib's parallel jobs on this machine (None: another launcher)
    threads: int | None = None      # torch_threads, or its default for the launcher (None: torch's own)
    threads_given: bool = False     # torch_threads was set
    submitit: bool = False          # hydra/launcher=slurm|slurm_cpu: the queue decides how many run at once
    cluster: bool = False           # submitit's SLURM launcher: the jobs run on the cluster's nodes
    gpu: int | None = None          # pin_gpu_per_job: job i of a sweep uses GPU i mod #GPUs

    @classmethod
    def resolve(cls, cfg: DictConfig, group_index: int | None = None) -> LaunchSpec:
        launcher = _launcher(cfg)
        cores = launch.cores()
        given = cfg.get("torch_threads")
        threads = int(given) if given else launch.default_threads(launcher, os.environ, cores)
        return cls(cores, launch.joblib_workers(launcher, cores), threads, bool(given), launch.is_submitit(launcher),
                   launch.is_cluster(launcher), _pinned_gpu(cfg, group_index))

    def torch_threads(self) -> int:
        """The CPU threads the job uses (as `configure_torch` sets them)."""
        import torch

        return self.threads or torch.get_num_threads()


def _launcher(cfg: DictConfig):
    """`hydra.launcher`: in the config the sweeper and the study compose, else the running job's."""
    if "hydra" in cfg:
        return cfg.hydra.launcher
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().launcher if HydraConfig.initialized() else None


def _pinned_gpu(cfg: DictConfig, group_index: int | None) -> int | None:
    """Job i of a sweep on GPU i mod #GPUs, so parallel jobs on one machine do not share a GPU."""
    if not (cfg.get("pin_gpu_per_job") and group_index is not None
            and OmegaConf.select(cfg, "trainer.devices", default=None) == 1):
        return None
    import torch

    gpus = torch.cuda.device_count()
    if gpus <= 1:
        return None
    from hydra.core.hydra_config import HydraConfig

    num = HydraConfig.get().job.num if HydraConfig.initialized() and "hydra" not in cfg else int(group_index)
    return int(num) % gpus


def check_job(cfg: DictConfig, say_ignored: bool = True, options_checked: bool = False) -> Corpus:
    """Every check of a job, once: its options (unless the entry or Hydra's preflight checked this very config
    already), its corpus (where it is read: `data.load`), and the options that depend on the labels. `say_ignored`:
    warn of clustering options the architecture does not use. The corpus."""
    from mtlv.checks import check_config, check_options, checked_by_preflight
    from mtlv.data.load import load_corpus

    if not (options_checked or checked_by_preflight(cfg)):
        check_options(cfg)
    corpus = load_corpus(cfg)
    check_config(cfg, corpus.num_labels, say_ignored)
    return corpus


@dataclass(frozen=True, eq=False)
class JobSpec:
    """One job of a cell (`group_index`: its group in an STL/GMTL cell; None: the cell's one model, or the
    cell itself before its groups are known)."""

    config: dict                    # the job's resolved config (`config.to_container`): config.yaml, params
    data_fingerprint: str           # the corpus' content hash: in every key
    data_name: str                  # the name its results are kept under (`data.load.data_name`)
    group_index: int | None
    cell: Cell                      # run name, cell key, cell folder, placement
    job_key: str
    job: JobLayout | None           # None: an STL/GMTL cell before its group is chosen (`for_group`)
    identity: dict                  # `config.identity`: what the job and cell keys hash
    model_base: dict                # what its model key hashes besides the job's labels and heads
    tracking: TrackingSpec | None
    launch: LaunchSpec

    @classmethod
    def resolve(cls, cfg: DictConfig, say_ignored: bool = True, options_checked: bool = False) -> JobSpec:
        """The entry's spec: the checks first (ConfigError/DataError: one `error:` line), then `of`.
        `options_checked`: the entry checked the options of all its configs already (the sweeper, the study
        planner: every cell's before any is prepared)."""
        check_job(cfg, say_ignored, options_checked)
        return cls.of(cfg)

    @classmethod
    def of(cls, cfg: DictConfig) -> JobSpec:
        """The spec of a config without its checks (they ran before, or only its names are wanted)."""
        from mtlv.data.load import data_fingerprint, data_name

        group_index = cfg.get("group_index")
        return cls.build(to_container(cfg), data_fingerprint(cfg), data_name(cfg), TrackingSpec.resolve(cfg),
                         LaunchSpec.resolve(cfg, group_index))

    @classmethod
    def build(cls, config: dict, data_fingerprint: str, data_name: str, tracking: TrackingSpec | None = None,
              launch: LaunchSpec | None = None) -> JobSpec:
        """From plain values (no Hydra): `config`, a resolved config as `config.to_container` gives it."""
        ident = identity_of(used_of(config))
        arch = config["arch"]
        cell_ident = dict(ident)
        if arch["grouping"] != "clustering":  # clustering options cannot change an mtl/stl cell
            cell_ident.pop("clustering", None)
        cell_ident["data_fingerprint"] = data_fingerprint
        name, key = run_name(config), stable_hash(cell_ident)
        layout = CellLayout(Path(config["paths"]["runs_dir"]) / config["dataset"]["name"] / f"{name}-{key}")
        cell = Cell(name, key, layout, arch["placement"])
        group_index = config.get("group_index")
        job = None if arch["placement"] == "models" and group_index is None else cell.job(group_index)
        return cls(config, data_fingerprint, data_name, group_index, cell,
                   stable_hash([ident, group_index, data_fingerprint]), job, ident,
                   model_base(ident, arch["placement"], data_fingerprint), tracking, launch or LaunchSpec(1))

    def for_group(self, group_index: int | None, launch: LaunchSpec | None = None) -> JobSpec:
        """The spec of the cell's job for `group_index` (what the launcher composes with `group_index=i`)."""
        if group_index == self.group_index:
            return self
        return dataclasses.replace(self, config={**self.config, "group_index": group_index}, group_index=group_index,
                                   job_key=self.job_keys([group_index])[0], job=self.cell.job(group_index),
                                   launch=launch or self.launch)

    # ---- keys -----------------------------------------------------------------------------------------
    def job_keys(self, group_indices) -> list[str]:
        """The keys of the cell's jobs for these groups (the identity leaves `group_index` out)."""
        return [stable_hash([self.identity, i, self.data_fingerprint]) for i in group_indices]

    def model_key(self, label_names: list[str], heads: list[list[int]]) -> str:
        return model_key(self.model_base, label_names, heads)

    def model_keys(self, grouping, group_indices) -> list[str]:
        return job_model_keys(self.model_base, grouping, list(group_indices))

    @property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.runs_dir, self.dataset)

    # ---- options the code below reads -------------------------------------------------------------------
    @property
    def arch(self) -> dict:
        return self.config["arch"]

    @property
    def dataset(self) -> str:
        return str(self.config["dataset"]["name"])

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    @property
    def resume(self) -> bool:
        return bool(self.config.get("resume"))

    @property
    def reuses(self) -> bool:
        """reuse_models and resume: the job may take another finished job's model of the same key."""
        return bool(self.config.get("reuse_models") and self.resume)

    @property
    def threshold(self) -> str:
        return str(self.config["eval"]["threshold"])

    @property
    def save_weights(self) -> bool:
        return bool(self.config["eval"]["save_weights"])

    @property
    def runs_dir(self) -> str:
        return str(self.config["paths"]["runs_dir"])

    @property
    def cache_dir(self) -> str | None:
        return self.config["paths"].get("cache_dir")

    @property
    def split(self) -> dict:
        return self.config["split"]

    @property
    def used(self) -> dict:
        """`config.used_config`: what the job's MLflow params are."""
        return used_of(self.config)

    @property
    def config_yaml(self) -> str:
        """The job's config.yaml (as `OmegaConf.to_yaml(cfg, resolve=True)` wrote it)."""
        return OmegaConf.to_yaml(OmegaConf.create(self.config))


def run_name(config: dict) -> str:
    """A cell's run name: architecture, model, the clustering's label (clustering archs), the fold."""
    from mtlv.grouping.base import method_from_config

    parts = [config["arch"]["name"], config["model"]["name"]]
    if config["arch"]["grouping"] == "clustering":
        parts.append(method_from_config(OmegaConf.create(config["clustering"])).label())
    if config["split"].get("folds") is not None:
        parts.append(f"fold{config['split']['fold']}")
    return "-".join(str(p) for p in parts)
