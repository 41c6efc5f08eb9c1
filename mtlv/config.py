"""OmegaConf resolvers and helpers shared by every entry point (imported before Hydra composes)."""
from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mtlv.tracking import sqlite_uri

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

if not OmegaConf.has_resolver("mtlv.abspath"):
    OmegaConf.register_new_resolver("mtlv.abspath", lambda p: str(Path(os.path.expanduser(str(p))).resolve()))
if not OmegaConf.has_resolver("mtlv.sqlite_uri"):
    # a SQLite store's URI from its file path, encoded where the path needs it (tracking.sqlite_uri)
    OmegaConf.register_new_resolver("mtlv.sqlite_uri", lambda p: sqlite_uri(str(p)))
if not OmegaConf.has_resolver("mtlv.model_name"):
    # 'packaged:minilm' -> minilm, 'dmis-lab/biobert-base-cased-v1.1' -> biobert-base-cased-v1.1
    OmegaConf.register_new_resolver(
        "mtlv.model_name", lambda p: str(p).rstrip("/").replace("packaged:", "").split("/")[-1])

# Keys that never change what a job computes: left out of its identity (resume keys).
VOLATILE_KEYS = ("hydra", "paths", "logger", "tracking", "group_index", "task_name", "resume", "reuse_models",
                "print_config")
VOLATILE_TRAINER_KEYS = ("enable_progress_bar", "default_root_dir", "log_every_n_steps", "enable_model_summary")
VOLATILE_ARCH_KEYS = ("inprocess",)  # how group jobs are run, not what they compute
DEFAULT_DATAMODULE = "mtlv.data.datamodule.MultiLabelDataModule"
# Options added after jobs were keyed without them, by config node: at these defaults they compute what was
# computed before, so they are left out of the key and finished jobs are still found. (A dataset source's
# options change what the data fingerprint already covers.)
LATER_DEFAULTS = {
    ("dataset", "source"): {"label_case": "keep", "encoding": "utf-8"},
    ("model", "module"): {"pos_weight": "none", "pos_weight_max": 30},
    ("trainer",): {"max_steps": -1},
}


# Callbacks do change results (early stopping, which checkpoint is "best"), except progress bars and
# injected faults (mtlv.run.faults: a drill's rerun without the fault must resume the same job).
def _volatile_callback(node: object) -> bool:
    target = str(node.get("_target_", "")) if isinstance(node, dict) else ""
    return not node or target.endswith("ProgressBar") or target.startswith(("mtlv.run.faults.", "mtlv.run.progress."))


def to_container(cfg: DictConfig) -> dict:
    """The resolved config without the `hydra` node (which only resolves inside a running job)."""
    return {key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
            for key in cfg if key != "hydra"}


def _no_grouping() -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "clustering" / "none.yaml"), resolve=True)


def used_config(cfg: DictConfig) -> dict:
    """The resolved config (`to_container`) of what the run uses: an architecture that does not cluster
    (mtl, stl: `arch.grouping` all/single) gets the `clustering=none` node, whatever clustering options the
    command gave. So the cells of a grid such as `arch=stl,mtl,gmtl clustering=a,b clustering.k=2,3` that
    differ only in options their architecture ignores are one job with one key, trained once, and its MLflow
    run logs no options it did not use (a second cell logging clustering.k=3 over 2 failed the job). With
    clustering=none itself nothing changes, so the keys of finished jobs stay as they were."""
    return used_of(to_container(cfg))


def used_of(data: dict) -> dict:
    """`used_config` of a resolved config given as a plain dict (`to_container`'s): a JobSpec is built from it."""
    data = dict(data)
    arch = data.get("arch")
    if isinstance(arch, dict) and arch.get("grouping", "clustering") != "clustering" and "clustering" in data:
        data["clustering"] = _no_grouping()
    return data


def identity(cfg: DictConfig) -> dict:
    """The resolved config minus what cannot change results: the key of a finished job or sweep cell."""
    return identity_of(used_config(cfg))


def identity_of(used: dict) -> dict:
    """`identity` of a `used_config` given as a plain dict (nothing in `used` is changed)."""
    data = {k: v for k, v in used.items() if k not in VOLATILE_KEYS}
    trainer = dict(data.get("trainer") or {})
    for key in VOLATILE_TRAINER_KEYS:
        trainer.pop(key, None)
    data["trainer"] = trainer
    callbacks = data.get("callbacks") or {}
    data["callbacks"] = {name: node for name, node in callbacks.items() if not _volatile_callback(node)}
    # Scoring the test set after every epoch (for the curves) changes no result: a job finished without
    # it is not retrained to get one.
    data["data"] = {k: v for k, v in (data.get("data") or {}).items() if k != "test_curve"}
    # The default DataModule's `_target_` (added to `data` after jobs were keyed without it) leaves the
    # key as it was; another DataModule class is part of it.
    if data["data"].get("_target_") == DEFAULT_DATAMODULE:
        del data["data"]["_target_"]
    if isinstance(data.get("arch"), dict):
        data["arch"] = {k: v for k, v in data["arch"].items() if k not in VOLATILE_ARCH_KEYS}
    for path, defaults in LATER_DEFAULTS.items():
        data = _without_defaults(data, path, defaults)
    return data


def _without_defaults(data: dict, path: tuple[str, ...], defaults: dict) -> dict:
    """`data` with the node at `path` lacking the keys that equal `defaults` (a copy; `data` is unchanged)."""
    head, *rest = path
    node = data.get(head)
    if not isinstance(node, dict):
        return data
    node = _without_defaults(node, tuple(rest), defaults) if rest else \
        {k: v for k, v in node.items() if defaults.get(k, object()) != v}
    return {**data, head: node}


def compose(overrides: list[str] | None = None, config_name: str = "train", return_hydra: bool = False) -> DictConfig:
    """Compose a config outside @hydra.main (tests, scripts, the sweeper)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []), return_hydra_config=return_hydra)


def flatten(data: dict, prefix: str = "") -> dict[str, object]:
    """{'a': {'b': 1}} -> {'a.b': 1}: MLflow params are flat."""
    flat: dict[str, object] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
