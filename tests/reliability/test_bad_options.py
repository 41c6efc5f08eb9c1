"""Bad option values and combinations stop before any work with one short `error: ...` line naming the value
and the fix (exit code 2); options that a combination ignores are said. Through the real entry point
(`python -m mtlv.train`, run in-process) and the option registry itself (mtlv/options.py, mtlv/checks.py)."""
from __future__ import annotations

import logging
import os

import pytest
from reliability._support import FAST, assert_short_error

from mtlv.config import compose
from mtlv.errors import ConfigError


# ----------------------------------------------------------------------------- the accelerator on a SLURM submission
def test_gpu_sweep_submitted_to_slurm_from_a_machine_without_gpu(entry, monkeypatch, tmp_path):
    """The login node that submits a `trainer=gpu` SLURM sweep has no GPU: the sweeper does not refuse it
    (each job checks its node's GPU there); when sbatch refuses the jobs, that is one error line naming
    sbatch's reason, exit 2, and a plain CPU sweep there still refuses `trainer=gpu`."""
    import torch

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sbatch").write_text("#!/bin/sh\necho 'sbatch: error: Batch job submission failed: Invalid partition "
                                 "name specified' >&2\nexit 1\n")
    # submitit's executor looks for srun on PATH before it submits anything (it runs the job under srun
    # on the node); here it must only be found, never run.
    (fake / "srun").write_text("#!/bin/sh\necho 'srun must not run on the submitting machine' >&2\nexit 99\n")
    for tool in ("sbatch", "srun"):
        (fake / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    code, _, err = entry("-m", "hydra/launcher=slurm", "hydra.launcher.partition=nosuch", "trainer=gpu", *FAST,
                         "logger=none")
    assert_short_error(code, err, "hydra/launcher=slurm: sbatch did not queue the 1 job(s)",
                       "Invalid partition name specified", "hydra.launcher.partition=")
    assert "needs CUDA" not in err
    if not torch.cuda.is_available():
        code, _, err = entry("-m", "trainer=gpu", *FAST, "logger=none")
        assert_short_error(code, err, "trainer.accelerator=gpu", "needs CUDA")


# ----------------------------------------------------------------------------- grouping options
@pytest.mark.parametrize("k", [0, -1, 9])
def test_clustering_k_out_of_range(entry, k):
    code, _, err = entry("arch=gmhl", "clustering=kmedoids_label", f"clustering.k={k}", *FAST)
    assert_short_error(code, err, f"clustering.k={k}: choose 1..8")


@pytest.mark.parametrize("groups, needles", [
    ("[[0,1,2],[Foo,3,4,5,6,7]]", ["unknown label 'Foo' in group 1", "labels are"]),
    ("[[0,1,2],[2,3,4,5,6,7]]", ["'opacity' appears in group 0 and group 1", "exactly one group"]),
    ("[[0,1,2],[3,4]]", ["['Nodule', 'Emphysema', 'spine/degenerative'] are in no group"]),
    ("[[0,1,2],[3,4,5,6,7,8]]", ["label index 8 in group 1 is out of range 0..7"]),
], ids=["unknown", "duplicate", "missing", "index"])
def test_given_groups_must_partition_the_labels(entry, groups, needles):
    code, _, err = entry("arch=gmhl", "clustering=given", f"clustering.groups={groups}", *FAST)
    assert_short_error(code, err, "clustering.groups", *needles)


def test_given_groups_are_required(entry):
    code, _, err = entry("arch=gmhl", "clustering=given", *FAST)
    assert_short_error(code, err, "clustering=given needs clustering.groups")


# ----------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("overrides, needle", [
    (["model.max_length=1000"], "model.max_length=1000: model=tiny takes 8 to 128 tokens (its random_init.max_position_embeddings=128); "
     "add model.max_length=128 to the command"),
    (["data.batch_size=0"], "data.batch_size=0: must be at least 1"),
    (["data.eval_batch_size=-4"], "data.eval_batch_size=-4: must be at least 1"),
    (["split.folds=1"], "split.folds=1: cross-validation needs at least 2 folds"),
    (["split.folds=5", "split.fold=5"], "split.fold=5 is out of range for split.folds=5: use 0..4"),
    (["split.folds=5", "split.fold=-1"], "split.fold=-1 is out of range"),
], ids=["max_length", "batch_size", "eval_batch_size", "folds", "fold", "negative_fold"])
def test_bad_sizes(entry, overrides, needle):
    code, _, err = entry(*FAST, *overrides)
    assert_short_error(code, err, needle)


def test_bad_split_options_stop_a_sweep_before_its_jobs(entry, tmp_path):
    """Checked once in the sweeper, not eight times in eight failed jobs."""
    code, out, err = entry("arch=stl", "split.folds=1", *FAST)
    assert_short_error(code, err, "split.folds=1")
    assert not list((tmp_path / "out").glob("runs/*/*/group-*"))


# ----------------------------------------------------------------------------- conflicting overrides
@pytest.mark.parametrize("overrides, message", [
    (["arch=mtl", "clustering.k=5"], "clustering.k=5 is ignored: arch=mtl always uses one group of all labels"),
    (["arch=stl", "clustering=kmedoids_desc"], "is ignored: arch=stl always uses one group per label"),
    (["arch=mtl", "clustering=given", "clustering.groups=[[0,1],[2,3,4,5,6,7]]"],
     "is ignored: arch=mtl always uses one group of all labels"),
    (["arch=gmhl", "clustering=given", "clustering.k=4", "clustering.groups=[[0,1],[2,3,4,5,6,7]]"],
     "clustering.k=4 is ignored: clustering=given takes the groups from clustering.groups"),
    (["arch=mtl", "group_index=2"], "group_index=2 is ignored: arch=mtl trains one model for all groups"),
], ids=["mtl+k", "stl+kmedoids", "mtl+given", "given+k", "mtl+group_index"])
def test_conflicting_overrides_explain_what_is_ignored(overrides, message, caplog, tmp_path):
    from mtlv.checks import check_config

    cfg = compose([*FAST, *overrides, f"paths.output_dir={tmp_path}"])
    with caplog.at_level(logging.WARNING, logger="mtlv.grouping.checks"):
        check_config(cfg, 8)
    assert message in caplog.text


def test_group_index_out_of_range_for_a_one_model_per_group_job(entry):
    code, _, err = entry("arch=stl", "hydra.mode=RUN", "group_index=8", *FAST)
    assert_short_error(code, err, "group_index=8", "0..7")


# ----------------------------------------------------------------------------- the check table, in-process
@pytest.mark.parametrize("override, needle", [
    ("trainer.max_epochs=0", "trainer.max_epochs=0: must be at least 1"),
    ("trainer.accelerator=gpus", "trainer.accelerator='gpus': use one of auto, cpu, gpu"),
    ("trainer.accumulate_grad_batches=1.5", "trainer.accumulate_grad_batches=1.5: must be a whole number"),
    ("data.eval_batch_size=abc", "data.eval_batch_size='abc': must be a whole number"),
    ("data.length_grouping=maybe", "data.length_grouping='maybe': must be true or false"),
    ("split.folds=2.5", "split.folds=2.5: must be a whole number"),
    ("split.val_size=abc", "split.val_size='abc': must be a number"),
    ("split.val_size=0", "split.val_size=0 must be a fraction between 0 and 1"),
    ("model.module.schedule=cosine", "model.module.schedule='cosine': use one of constant, linear"),
    ("model.module.loss_reduction=max", "model.module.loss_reduction='max': use one of sum, mean, weighted"),
    ("model.module.dropout=1.0", "model.module.dropout=1.0: must be from 0 to 1 (exclusive)"),
    ("model.module.lr=-1", "model.module.lr=-1: must be at least 0"),
    ("model.module.warmup_ratio=abc", "model.module.warmup_ratio='abc': must be a number"),
    ("torch_threads=0", "torch_threads=0: must be at least 1 (or null)"),
    ("dataset.limit=5", "dataset.limit=5: must be at least 10"),
    ("group_index=-1", "group_index=-1: must be at least 0"),
    ("eval.save_weights=yes", "eval.save_weights='yes': must be true or false"),
    ("clustering.feature=title", "clustering.feature='title': use one of name, description"),
    ("clustering.backend=clara", "clustering.backend='clara': use one of"),
    ("clustering.k_max=0", "clustering.k_max=0: must be at least 1"),
])
def test_option_table_rejects(tmp_path, override, needle):
    from mtlv.checks import check_options

    extra = ["clustering=kmedoids_label", "arch=gmhl"] if override.startswith("clustering.") else []
    cfg = compose([*FAST, *extra, override, f"paths.output_dir={tmp_path}"])
    with pytest.raises(ConfigError) as info:
        check_options(cfg)
    assert needle in str(info.value)


@pytest.mark.parametrize("config_name, overrides", [
    ("train", []), ("train", ["arch=gmtl"]), ("train", ["dataset=ohsumed", "trainer=cpu"]),
    ("train", ["clustering=given", "clustering.groups=[[0,1],[2,3,4,5,6,7]]"]), ("baseline", []),
    ("train", ["experiment=openi_paper"]), ("train", ["experiment=ohsumed_paper"]), ("train", ["experiment=smoke"]),
])
def test_option_table_accepts_the_shipped_configs(tmp_path, config_name, overrides):
    from mtlv.checks import check_options

    check_options(compose([*overrides, f"paths.output_dir={tmp_path}"], config_name=config_name))


def test_option_table_names_only_keys_that_exist():
    """A renamed config key must not silently drop out of the checks."""
    from omegaconf import OmegaConf

    from mtlv.options import OPTIONS, PREDICT_OPTIONS

    configs = [compose(["clustering=kmedoids_label", "dataset=ohsumed"], config_name="baseline"),
               compose(["clustering=given"]), compose(["arch=gmtl", "clustering=affinity"]),
               compose(["hydra/launcher=parallel"], return_hydra=True)]
    for option in OPTIONS:
        assert any(OmegaConf.select(c, option.key, default="<absent>") != "<absent>" for c in configs), option.key
    predict = compose(["run=x", "input=y"], config_name="predict")
    assert all(OmegaConf.select(predict, o.key, default="<absent>") != "<absent>" for o in PREDICT_OPTIONS)


def test_trainer_deterministic_takes_lightnings_warn(entry):
    """Found on the GPU: Lightning's `deterministic="warn"` (deterministic where CUDA has such kernels) was
    refused as not a bool; a value that is neither names all three."""
    from mtlv.options import check_values

    for value in ("true", "false", "warn", "null"):
        check_values(compose([f"trainer.deterministic={value}"]))
    code, _, err = entry("trainer.deterministic=maybe", *FAST)
    assert_short_error(code, err, "trainer.deterministic='maybe'", "true or false or warn")


# ----------------------------------------------------------------------------- values other libraries refuse late
@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_out_of_numpys_range_is_one_error_line(entry, tmp_path, seed):
    """numpy, torch and Lightning take seeds 0..2**32-1; -1 was a numpy traceback after the data had loaded."""
    code, _, err = entry(f"seed={seed}", *FAST)
    assert_short_error(code, err, f"seed={seed}: must be from 0 to 4294967295", "seed=42")
    assert not (tmp_path / "out" / "cache").exists() and not (tmp_path / "out" / "runs").exists()


def test_seed_range_ends_are_accepted(tmp_path):
    from mtlv.options import check_values

    for seed in (0, 2**32 - 1):
        check_values(compose([f"seed={seed}"]))


def _cores() -> int:
    import joblib

    return joblib.cpu_count()


@pytest.mark.parametrize("n_jobs", [0, "below"])
def test_parallel_launcher_n_jobs_joblib_cannot_use(entry, tmp_path, n_jobs):
    """n_jobs=0 was joblib's ValueError after the sweep had loaded the data; below -cores joblib quietly runs one
    worker. Both stop before any folder is made, naming what joblib accepts."""
    value = -_cores() - 1 if n_jobs == "below" else n_jobs
    code, _, err = entry("-m", "arch=gmtl", "hydra/launcher=parallel", f"hydra.launcher.n_jobs={value}", *FAST,
                         "logger=none")
    assert_short_error(code, err, f"hydra.launcher.n_jobs={value}: must be 1 or more",
                       f"from -1 (all {_cores()} cores here) down to -{_cores()}", "hydra.launcher.n_jobs=2")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.yaml"))


def test_n_jobs_joblib_accepts_pass_the_check():
    from mtlv.options import check_values

    for value in (1, 3, -1, -_cores()):
        check_values(compose(["hydra/launcher=parallel", f"hydra.launcher.n_jobs={value}"], return_hydra=True))
        check_values(compose([f"baseline.n_jobs={value}"], config_name="baseline"))
    with pytest.raises(ConfigError, match="baseline.n_jobs=0: must be 1 or more"):
        check_values(compose(["baseline.n_jobs=0"], config_name="baseline"))
