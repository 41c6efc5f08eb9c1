"""The JobSpec (mtlv/run/spec.py): a job resolved once at its entry.

- Built from plain values, without Hydra, it gives the golden keys, folders and names
  (tests/golden/keys.json): tests/golden/spec_configs.json holds the resolved configs of three golden cases
  (`config.to_container` of the case's composed config, with the machine's output and data folders written
  as /outputs and /data; none of them is part of a key) and their data fingerprints.
- A real job runs each of its checks exactly once: the option checks, the corpus checks and the
  label-dependent checks are counted wherever they are called from.
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
from helpers import TINY

from mtlv.config import compose
from mtlv.grouping.partition import from_spec
from mtlv.run.spec import JobSpec, LaunchSpec, TrackingSpec

GOLDEN = Path(__file__).parent / "golden"
CASES = json.loads((GOLDEN / "spec_configs.json").read_text())
KEYS = json.loads((GOLDEN / "keys.json").read_text())


ABSENT = object()  # a change that removes the key (a config group left unselected, e.g. `weighting: null`)


def spec_of(case: str, **changes) -> JobSpec:
    """The case's spec from its plain resolved config; `changes`: 'node.key' -> value (or ABSENT)."""
    given = CASES[case]
    config = copy.deepcopy(given["config"])
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        node = config
        for key in path:
            node = node[key]
        if value is ABSENT:
            del node[last]
        else:
            node[last] = value
    return JobSpec.build(config, given["data_fingerprint"], given["data_name"])


def relative(path: Path) -> str:
    return str(Path(path).relative_to("/outputs/runs"))


def grouping_of(case: str, spec: JobSpec):
    groups = spec.config["clustering"].get("groups") or [list(range(len(CASES[case]["label_names"])))]
    return from_spec(groups, CASES[case]["label_names"], spec.arch["placement"])


@pytest.mark.parametrize("case", list(CASES))
def test_a_spec_from_plain_values_has_the_golden_keys_and_names(case):
    spec = spec_of(case)
    golden = KEYS[case]
    assert (spec.cell.run_name, spec.cell.key, relative(spec.cell.folder)) == (
        golden["cell"]["run_name"], golden["cell"]["key"], golden["cell"]["folder"])
    grouping = grouping_of(case, spec)
    indices = [job["group_index"] for job in golden["jobs"]]
    assert spec.job_keys(indices) == [job["key"] for job in golden["jobs"]]
    assert spec.model_keys(grouping, indices) == [job["model_key"] for job in golden["jobs"]]
    for index, job in zip(indices, golden["jobs"]):
        one = spec.for_group(index)
        assert (one.group_index, one.job_key, relative(one.job.folder)) == (index, job["key"], job["folder"])
        assert relative(one.registry.entry(job["model_key"])) == job["registry"]
        assert one.config["group_index"] == index and f"group_index: {index}".replace("None", "null") in one.config_yaml
    assert spec.data_name == golden["jobs"][0]["tags"]["dataset"]


def test_what_cannot_change_a_result_leaves_every_key_as_it_is():
    spec = spec_of("gmtl_given")
    same = spec_of("gmtl_given", **{"resume": False, "reuse_models": False, "paths.runs_dir": "/outputs/runs",
                                    "trainer.enable_progress_bar": False, "arch.inprocess": True,
                                    "logger.experiment_name": "other", "data.test_curve": True})
    assert (same.cell.key, same.job_keys([0, 1, 2])) == (spec.cell.key, spec.job_keys([0, 1, 2]))
    grouping = grouping_of("gmtl_given", spec)
    assert same.model_keys(grouping, [0, 1, 2]) == spec.model_keys(grouping, [0, 1, 2])
    other = spec_of("gmtl_given", seed=7)
    assert other.cell.key != spec.cell.key and other.job_keys([0]) != spec.job_keys([0])
    assert other.model_keys(grouping, [0]) != spec.model_keys(grouping, [0])
    # the threshold is chosen again from the predictions: another job, the same model
    thresholds = spec_of("gmtl_given", **{"eval.threshold": "per_label"})
    assert thresholds.job_keys([0]) != spec.job_keys([0])
    assert thresholds.model_keys(grouping, [0]) == spec.model_keys(grouping, [0])
    # another data file (its fingerprint) is another cell
    moved = JobSpec.build(spec.config, "0" * 12, spec.data_name)
    assert moved.cell.key != spec.cell.key and moved.model_keys(grouping, [0]) != spec.model_keys(grouping, [0])


def test_a_weighting_that_is_a_reduction_is_the_model_of_that_reduction():
    """`weighting=sum|mean` (its node, also passed to the module) trains the model of `loss_reduction=sum|mean`."""
    def spec_with(weighting: str | None, reduction: str) -> JobSpec:
        node = {"_partial_": True, "_target_": f"mtlv.weighting.{weighting}"} if weighting else None
        return spec_of("gmhl_given_weighting_sum", **{"weighting": node or ABSENT, "model.module.weighting": node,
                                                      "model.module.loss_reduction": reduction})

    grouping = grouping_of("gmhl_given_weighting_sum", spec_of("gmhl_given_weighting_sum"))
    key = {name: spec.model_keys(grouping, [None])[0] for name, spec in {
        "weighting=sum": spec_with("Sum", "sum"), "reduction=sum": spec_with(None, "sum"),
        "weighting=mean": spec_with("Mean", "sum"), "reduction=mean": spec_with(None, "mean"),
        "weighting=uncertainty": spec_with("Uncertainty", "sum")}.items()}
    assert key["weighting=sum"] == key["reduction=sum"] == KEYS["gmhl_given"]["jobs"][0]["model_key"]
    assert key["weighting=mean"] == key["reduction=mean"] != key["reduction=sum"]
    assert key["weighting=uncertainty"] not in (key["reduction=sum"], key["reduction=mean"])
    # two spellings of one loss: two jobs (each its own folder and result), one model trained once
    assert spec_with("Sum", "sum").job_keys([None]) != spec_with(None, "sum").job_keys([None])


def test_tracking_is_resolved_once_when_first_read(monkeypatch):
    from mtlv import tracking

    calls = []
    monkeypatch.setattr(tracking, "resolve_uri", lambda uri, fallback=None: calls.append("uri") or uri)
    monkeypatch.setattr(tracking, "experiment_id", lambda uri, name, where=None: calls.append(name) or "7")
    spec = TrackingSpec("sqlite:///x.db", None, "demo", None)
    assert calls == []  # a finished job never asks the store
    assert (spec.experiment_id, spec.experiment_id, spec.uri) == ("7", "7", "sqlite:///x.db")
    assert calls == ["uri", "demo"]


def test_the_launch_facts_follow_the_launcher(monkeypatch):
    from mtlv import launch

    monkeypatch.setattr(launch, "cores", lambda: 16)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    parallel = LaunchSpec.resolve(compose(["hydra/launcher=parallel", "hydra.launcher.n_jobs=4"], return_hydra=True))
    assert (parallel.workers, parallel.threads, parallel.cluster, parallel.gpu) == (4, 4, False, None)
    slurm = LaunchSpec.resolve(compose(["hydra/launcher=slurm"], return_hydra=True))
    assert (slurm.submitit, slurm.cluster, slurm.workers) == (True, True, None)
    given = LaunchSpec.resolve(compose(["torch_threads=3"], return_hydra=True))
    assert (given.threads, given.threads_given) == (3, True)


# ---- the checks run once per job --------------------------------------------------------------------------

@pytest.fixture
def check_calls(monkeypatch):
    """How often each check runs, counted by its code object: wherever it is called from, however imported."""
    from mtlv import checks
    from mtlv.data import checks as data_checks
    from mtlv.data import load

    monkeypatch.setattr(load, "_LOADED", {})  # the corpus is read (and checked) here, not from an earlier test
    watched = {checks.check_options.__code__: "options", data_checks.check_corpus.__code__: "corpus",
               checks.check_config.__code__: "config"}
    counts = {name: 0 for name in watched.values()}

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in watched:
            counts[watched[frame.f_code]] += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    yield counts
    sys.setprofile(previous)


FAST = [*TINY, "dataset.limit=60", "logger=none", "eval.save_weights=false", "torch_threads=1"]


def test_a_job_runs_each_check_once(tmp_path, check_calls):
    from mtlv.run.job import run_job

    run_job(compose([*FAST, "arch=mtl", f"paths.output_dir={tmp_path}"]))
    assert check_calls == {"options": 1, "corpus": 1, "config": 1}


def test_an_inprocess_cell_runs_each_check_once_for_all_its_groups(tmp_path, check_calls):
    from mtlv.run.inprocess import run_groups

    cfg = compose([*FAST, "arch=gmtl", "clustering=given", "clustering.groups=[[0,1,2,3],[4,5,6,7]]",
                   "arch.inprocess=true", f"paths.output_dir={tmp_path}"])
    assert len(run_groups(cfg, JobSpec.resolve(cfg))) == 2
    assert check_calls == {"options": 1, "corpus": 1, "config": 1}


def test_the_train_command_runs_each_check_once(tmp_path, monkeypatch, check_calls):
    """`python -m mtlv.train`: Hydra's preflight checks the options before it makes its run folder; the job's
    spec then does not check them again."""
    from hydra.core.global_hydra import GlobalHydra

    from mtlv import train

    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["mtlv.train", *FAST, "arch=mtl", f"paths.output_dir={tmp_path}"])
    train.main()
    assert check_calls == {"options": 1, "corpus": 1, "config": 1}
    assert len(list((tmp_path / "runs" / "demo").glob("mtl-tiny-*/model/result.json"))) == 1
