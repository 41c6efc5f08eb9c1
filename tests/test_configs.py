"""Every option of every config group composes (tests/test_config_options.py builds each into what a job
builds from it), every `_target_` resolves, and the commands share their defaults."""
from pathlib import Path

import pytest
from hydra.utils import instantiate

from mtlv.config import CONF_DIR, compose

GROUPS = ["model", "dataset", "arch", "clustering", "weighting", "trainer", "logger", "callbacks", "experiment"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes(group, option):
    overrides = [f"{group}={option}"]
    if group == "dataset" and option == "csv":
        overrides.append("dataset.path=data.csv")
    if group == "clustering" and option == "given":
        overrides.append("clustering.groups=[[0,1],[2]]")
    cfg = compose(overrides)
    assert cfg.trainer.max_epochs >= 1
    assert cfg.model.module._target_ == "mtlv.models.module.MultiTaskModule"
    assert cfg.model.trust_remote_code is False  # never on unless a config says so
    assert cfg.arch.placement in ("heads", "models")


def _targets(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["_target_"]] if isinstance(node.get("_target_"), str) else []
        return own + [t for v in node.values() for t in _targets(v)]
    return [t for v in node for t in _targets(v)] if isinstance(node, list) else []


def test_every_target_in_conf_resolves():
    """Every `_target_` written in conf/ names a class or function that exists (modules move; configs follow)."""
    import sys

    import yaml
    from hydra._internal.utils import _locate

    import mtlv

    repo = Path(mtlv.__file__).resolve().parents[1]

    targets = sorted({t for p in CONF_DIR.rglob("*.yaml") for t in _targets(yaml.safe_load(p.read_text()) or {})
                      if "${" not in t})
    assert "mtlv.grouping.methods.CooccurrenceGrouping" in targets and len(targets) > 15
    for target in targets:
        obj = _locate(target)
        assert callable(obj), target
        if target.startswith("mtlv."):  # from this checkout, not from another install of mtlv
            assert repo in Path(sys.modules[obj.__module__].__file__).resolve().parents, target


def test_arch_sets_grouping_and_sweep_mode():
    for arch, placement, clustering in [("mtl", "heads", "none"), ("gmhl", "heads", "kmedoids"),
                                        ("stl", "models", "none"), ("gmtl", "models", "kmedoids")]:
        cfg = compose([f"arch={arch}"], return_hydra=True)
        assert cfg.arch.placement == placement and cfg.clustering.method == clustering
        assert (str(cfg.hydra.mode) == "RunMode.MULTIRUN") == (placement == "models")
    assert compose(["arch=gmtl", "clustering=given", "clustering.groups=[[0]]"]).clustering.method == "given"


def test_launcher_configs_compose():
    joblib = compose(["hydra/launcher=parallel"], return_hydra=True).hydra.launcher
    assert joblib._target_.endswith("JoblibLauncher") and joblib.n_jobs == 2
    slurm = compose(["hydra/launcher=slurm"], return_hydra=True).hydra.launcher
    assert slurm._target_.endswith("MTLVSlurmLauncher") and slurm.gpus_per_node == 1
    assert slurm.additional_parameters == {"signal": "USR1@180", "requeue": True}  # pre-emption: see README
    cpu = compose(["hydra/launcher=slurm_cpu", "hydra.launcher.signal_delay_s=60"], return_hydra=True).hydra.launcher
    assert cpu._target_ == slurm._target_ and cpu.gpus_per_node is None and cpu.cpus_per_task == 4
    assert cpu.additional_parameters.signal == "USR1@60"


def test_trainer_and_callbacks_instantiate(tmp_path: Path):
    cfg = compose(["trainer=cpu", "callbacks=early_stopping", f"paths.output_dir={tmp_path}"])
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=False)
    assert trainer.max_epochs == cfg.trainer.max_epochs
    names = {type(c).__name__ for c in callbacks}
    # the bar in a terminal, lines in a log file (which one: tests/run/test_progress.py)
    assert names - {"TQDMProgressBar", "LineProgressBar"} == {"ModelCheckpoint", "EarlyStopping"} and len(names) == 3


def test_default_paths_follow_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path))
    cfg = compose()
    assert cfg.paths.output_dir == str(tmp_path)
    assert cfg.tracking.uri == f"sqlite:///{tmp_path}/mlflow.db"


@pytest.mark.parametrize("config_name, key", [("train", "tracking.uri"), ("baseline", "tracking.uri"),
                                              ("predict", "tracking_uri"), ("report", "tracking_uri")])
def test_every_command_defaults_to_the_same_store(monkeypatch, tmp_path, config_name, key):
    from omegaconf import OmegaConf

    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path))
    overrides = ["run=x", "input=-"] if config_name == "predict" else []
    cfg = compose(overrides, config_name=config_name)
    assert OmegaConf.select(cfg, key) == f"sqlite:///{tmp_path}/mlflow.db"
    moved = compose(overrides + [f"paths.output_dir={tmp_path}/elsewhere"], config_name=config_name)
    assert OmegaConf.select(moved, key) == f"sqlite:///{tmp_path}/elsewhere/mlflow.db"


def test_openi_cpu_budget_is_the_open_i_protocol_at_one_epoch():
    """experiment=openi_cpu (docs/grouping.md, "GMTL over every grouping, with STL and MTL"): the reference's folds, data and length,
    one epoch, the smoke scale's learning rates, no checkpoints or exported weights."""
    cpu, paper = compose(["experiment=openi_cpu"]), compose(["experiment=openi_paper", "model=minilm"])
    assert (cpu.dataset.name, cpu.dataset.get("limit"), cpu.split.folds, cpu.model.max_length, cpu.data.batch_size) == \
        ("openi", None, 4, 128, 16) == (paper.dataset.name, paper.dataset.get("limit"), paper.split.folds,
                                       paper.model.max_length, paper.data.batch_size)
    assert (cpu.trainer.max_epochs, paper.trainer.max_epochs) == (1, 10)
    assert (cpu.model.name, cpu.model.module.lr, cpu.model.module.head_lr, cpu.model.module.pooling) == \
        ("minilm", 5e-5, 3e-2, "mean")
    assert cpu.model.module.schedule == "constant" and cpu.model.module.warmup_ratio == 0.0
    assert cpu.callbacks.get("model_checkpoint") is None and cpu.eval.save_weights is False
