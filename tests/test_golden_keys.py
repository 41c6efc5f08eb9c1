"""Golden test: the keys, folder names, MLflow experiment and run names and logged params that today's code
computes for a fixed set of configs (every architecture and clustering, a study, SLURM and joblib launchers,
baselines), pinned in tests/golden/keys.json.

Finished work is found by these names: a job's result.json is reused when its key matches, a model is
reused through its model key, a study finds its folder again by its name, and MLflow runs are matched by
their tags. A change to any of them leaves users' finished outputs behind (they would be retrained), so a
refactoring must keep them byte for byte. No training: configs are composed, the real functions compute
the names, and MLflow is replaced by a recorder of what would be logged.

The functions below (train_facts, baseline_facts, study_facts, launcher_facts) call today's code; a
refactoring that moves what computes a name changes them, and keys.json stays as it is.

A deliberate change of a name (with a migration or a note in the changelog) rewrites the file:
    MTLV_REGEN_GOLDEN=1 python -m pytest -q tests/test_golden_keys.py -p no:cacheprovider [-k case]
and the diff of tests/golden/keys.json is then reviewed like code.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from mtlv.config import compose

GOLDEN = Path(__file__).parent / "golden" / "keys.json"
NOTES_CSV = "notes.csv"  # tests/golden/notes.csv, read from that folder so no checkout path enters a key
REGEN = os.environ.get("MTLV_REGEN_GOLDEN") == "1"

TINY = ["model=tiny", "dataset.limit=200"]
GIVEN = ["clustering=given", "clustering.groups=[[0,5],[1,3,6],[2,4,7]]"]  # demo: 8 labels, not contiguous
CSV = ["dataset=csv", f"dataset.path={NOTES_CSV}", "dataset.source.text_columns=[note]",
       "dataset.source.label_column=codes", "dataset.source.label_delimiter=|", "model=tiny"]
# The groups a learned clustering is given here instead of computing them (the keys are what is pinned,
# not the clustering): every learned k is one of these partitions of the 8 demo labels.
FIXED_GROUPS = {2: [[0, 2, 4, 6], [1, 3, 5, 7]], 3: [[0, 5], [1, 3, 6], [2, 4, 7]]}

# case -> overrides of `python -m mtlv.train`
TRAIN_CASES: dict[str, list[str]] = {
    "default": [],                                                              # mtl, minilm, demo, all documents
    "mtl": ["arch=mtl", *TINY],
    "mtl_fold": ["arch=mtl", *TINY, "split.folds=5", "split.fold=1"],
    "mtl_ignored_clustering": ["arch=mtl", *TINY, "clustering=kmedoids_label", "clustering.k=2"],
    "mtl_per_label_seed": ["arch=mtl", *TINY, "eval.threshold=per_label", "seed=7"],
    "stl": ["arch=stl", *TINY],
    "stl_inprocess": ["arch=stl", *TINY, "arch.inprocess=true"],
    "gmhl_given": ["arch=gmhl", *TINY, *GIVEN],
    "gmhl_given_weighting_sum": ["arch=gmhl", *TINY, *GIVEN, "weighting=sum"],
    "gmhl_given_weighting_pcgrad": ["arch=gmhl", *TINY, *GIVEN, "weighting=pcgrad"],
    "gmtl_given": ["arch=gmtl", *TINY, *GIVEN],
    "gmtl_given_names": ["arch=gmtl", *TINY, "clustering=given",
                         "clustering.groups=[[Nodule,Cardiomegaly],[Effusion,opacity,Atelectasis],"
                         "['Calcified granuloma',Emphysema,spine/degenerative]]"],
    "gmhl_kmedoids_label_k3": ["arch=gmhl", *TINY, "clustering=kmedoids_label", "clustering.k=3"],
    "gmhl_kmedoids_label_auto": ["arch=gmhl", *TINY, "clustering=kmedoids_label", "clustering.k=auto"],
    "gmhl_kmedoids_desc_agglomerative": ["arch=gmhl", *TINY, "clustering.algorithm=agglomerative"],
    "gmtl_kmedoids_desc_k2": ["arch=gmtl", *TINY, "clustering.k=2"],
    "gmhl_cooccurrence_auto_agglomerative": ["arch=gmhl", *TINY, "clustering=cooccurrence", "clustering.k=auto",
                                             "clustering.algorithm=agglomerative", "clustering.linkage=complete"],
    "gmtl_cooccurrence_k3": ["arch=gmtl", *TINY, "clustering=cooccurrence", "clustering.k=3"],
    "gmhl_affinity_k2": ["arch=gmhl", *TINY, "clustering=affinity", "clustering.k=2"],
    "gmtl_affinity_auto_lookahead": ["arch=gmtl", *TINY, "clustering=affinity", "clustering.k=auto",
                                     "clustering.measure=lookahead"],
    "csv_mtl": ["arch=mtl", *CSV],
    "csv_gmtl_given": ["arch=gmtl", *CSV, "clustering=given", "clustering.groups=[[fever,rash],[cough,nausea]]"],
    "slurm_gmtl_given": ["arch=gmtl", *TINY, *GIVEN, "hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
    "parallel_stl": ["arch=stl", *TINY, "hydra/launcher=parallel", "hydra.launcher.n_jobs=2"],
}
# case -> overrides of `python -m mtlv.baseline`
BASELINE_CASES: dict[str, list[str]] = {
    "baseline_tfidf_logreg": ["dataset.limit=200"],
    "baseline_bow_forest_fold": ["dataset.limit=200", "baseline.features=bow", "baseline.classifier=random_forest",
                                 "split.folds=5", "split.fold=2"],
}
STUDY = """\
defaults:
  - _study
  - _self_
name: golden
about: the study of the golden test
budget: [trainer.max_epochs=1]
probe: false
dry_run: true
grids:
  anchors: {arch: [mtl, stl]}
  given: {arch: [gmtl, gmhl], clustering: given, clustering.groups: [[0, 5], [1, 3, 6], [2, 4, 7]]}
baselines: {baseline.features: [tfidf], baseline.classifier: [logreg]}
"""
STUDY_ARGS = ["study=golden", "model=tiny", "dataset.limit=200"]


# ---- MLflow replaced by a recorder of what would be logged -------------------------------------------------

class Recorder:
    def __init__(self) -> None:
        self.experiments: list[str] = []
        self.runs: dict[str, dict] = {}

    def install(self, monkeypatch) -> None:
        from mtlv import tracking

        monkeypatch.setattr(tracking, "resolve_uri", lambda uri, fallback=None: uri)
        monkeypatch.setattr(tracking, "check_store", lambda uri, timeout_s=10.0: None)
        monkeypatch.setattr(tracking, "experiment_id", self.experiment_id)
        monkeypatch.setattr(tracking, "create_run", self.create_run)
        monkeypatch.setattr(tracking, "end_orphans", lambda *a, **k: [])
        monkeypatch.setattr(tracking, "log_to_run", self.log_to_run)
        monkeypatch.setattr(tracking, "end_run", lambda *a, **k: None)

    def experiment_id(self, uri, name, artifact_location=None):
        self.experiments.append(name)
        return f"experiment:{name}"

    def create_run(self, uri, experiment, run_name, tags=None, start_time=None):
        run_id = f"run{len(self.runs)}"
        self.runs[run_id] = {"experiment": experiment, "run_name": run_name, "tags": dict(tags or {}),
                             "params": {}, "metrics": []}
        return run_id

    def log_to_run(self, uri, run_id, params=None, metrics=None, artifacts=None, tags=None, artifact_dir=None):
        run = self.runs.setdefault(run_id, {"params": {}, "metrics": []})
        # MLflow keeps strings; the machine's environment (env.git_commit, env.torch, ...) is named, not pinned
        run["params"].update({k: "<env>" if k.startswith("env.") else str(v) for k, v in (params or {}).items()})
        run["metrics"] = sorted(set(run["metrics"]) | set(metrics or {}))

    def logger(self, node, **kwargs):
        """Stands in for `instantiate(cfg.logger, ...)`: Lightning's MLFlowLogger would open the run."""
        run_id = f"run{len(self.runs)}"
        self.runs[run_id] = {"logger": {**OmegaConf.to_container(node, resolve=True), **kwargs},
                             "params": {}, "metrics": []}
        return type("Logger", (), {"run_id": run_id})()


@pytest.fixture
def recorder(monkeypatch, tmp_path) -> Recorder:
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("MTLV_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(GOLDEN.parent)  # dataset.path=notes.csv
    rec = Recorder()
    rec.install(monkeypatch)
    return rec


# ---- what each case pins: the real functions that compute the names -----------------------------------------

def _report(corpus, split, columns: list[int]) -> dict:
    """An evaluation of predictions equal to the targets (every label with positives has an F1), threshold 0.5."""
    from mtlv.evaluation.evaluate import evaluate
    from mtlv.evaluation.predictions import Predictions

    names = [corpus.label_names[j] for j in columns]

    def part(rows):
        targets = corpus.labels[np.asarray(rows)][:, columns]
        return Predictions([corpus.ids[i] for i in rows], targets * 0.8 + 0.1, targets, names)

    report = evaluate(part(split.val), part(split.test))
    report["threshold"] = 0.5
    return report


def _fix_learned_groups(cfg, corpus) -> None:
    """A learned clustering's groups, written where the cell keeps them, so no clustering is computed."""
    from mtlv.grouping.base import method_from_config
    from mtlv.grouping.partition import from_spec
    from mtlv.run.spec import JobSpec

    if cfg.arch.grouping != "clustering" or not method_from_config(cfg.clustering).learned:
        return
    k = cfg.clustering.k
    groups = FIXED_GROUPS[3 if k == "auto" else int(k)]
    path = JobSpec.of(cfg).cell.layout.groups_yaml
    path.parent.mkdir(parents=True, exist_ok=True)
    from_spec(groups, corpus.label_names, cfg.arch.placement).save(path)


def _grouping_key(cfg, spec, monkeypatch) -> str | None:
    """The cache key of a learned grouping; an encoder's files are known by their sizes and mtimes, which
    differ per checkout, so they are left out here (the rest of the key is pinned)."""
    from mtlv.grouping import features
    from mtlv.grouping.base import method_from_config
    from mtlv.run.cell import grouping_key

    method = method_from_config(cfg.clustering)
    if cfg.arch.grouping != "clustering" or not method.learned:
        return None
    monkeypatch.setattr(features, "_encoder_identity", lambda encoder: {"encoder": str(encoder), "files": "pinned"})
    return grouping_key(spec, method)


def _differing(first: dict, other: dict) -> dict:
    """`other`'s params that `first` lacks or has with another value, and those it lacks (as null)."""
    return {**{k: v for k, v in other.items() if first.get(k) != v}, **{k: None for k in first if k not in other}}


def train_facts(cfg, recorder: Recorder, monkeypatch) -> dict:
    from mtlv.io import read_json
    from mtlv.run import nodes
    from mtlv.data.splits import load_or_make_split
    from mtlv.run import record
    from mtlv.data.load import load_corpus
    from mtlv.run.cell import cell_grouping
    from mtlv.run.cost import speed_key
    from mtlv.run.nodes import make_logger
    from mtlv.run.outcome import spec_tags
    from mtlv.run.prepare import prepare_cell
    from mtlv.run.spec import JobSpec

    corpus = load_corpus(cfg)
    _fix_learned_groups(cfg, corpus)
    runs = Path(cfg.paths.runs_dir)
    spec = JobSpec.resolve(cfg)  # as the entry (mtlv.train, the sweeper) resolves it
    cell = spec.cell
    if cfg.arch.placement == "models":
        grouping = prepare_cell(spec, corpus)  # the sweeper's preparation: grouping and parent MLflow run
        indices = list(range(grouping.num_groups))
    else:
        grouping, indices = cell_grouping(spec, corpus), [None]
    split = load_or_make_split(corpus, cfg.paths.cache_dir, seed=int(cfg.seed), **cfg.split)
    keys, model_keys = spec.job_keys(indices), spec.model_keys(grouping, indices)
    jobs, first_params = [], None
    for index, key, model_key in zip(indices, keys, model_keys):
        job_spec = spec.for_group(index)
        layout = job_spec.job
        layout.mkdir()
        columns, _ = grouping.job_labels(index)
        labels = [corpus.label_names[j] for j in columns]
        with monkeypatch.context() as patch:  # the job's MLflow logger, as train_job makes it
            patch.setattr(nodes, "instantiate", recorder.logger)
            _, uri = make_logger(cfg.logger, job_spec, record.job_run_name(cell.run_name, index, labels),
                                 spec_tags(job_spec))
        run_id = read_json(layout.mlflow_run)["run_id"]
        record.log_job(job_spec.used, uri, run_id, cell.layout, layout, grouping, _report(corpus, split, columns),
                       1.0, record.split_info(split), env=record.environment_params(), trainable_params=1234)
        logged = recorder.runs.pop(run_id)
        logger = logged["logger"]
        job = {"group_index": index, "key": key, "folder": str(layout.folder.relative_to(runs)),
               "model_key": model_key, "registry": str(job_spec.registry.entry(model_key).relative_to(runs)),
               "run_name": logger["run_name"], "experiment_name": logger["experiment_name"], "tags": logger["tags"]}
        assert (job_spec.job_key, job_spec.model_key(labels, grouping.job_labels(index)[1])) == (key, model_key)
        if first_params is None:
            first_params = logged["params"]
            job.update(params=logged["params"], metrics=logged["metrics"])
        else:  # a later group job's params: only those that differ from the first job's
            job["params_differing"] = _differing(first_params, logged["params"])
        jobs.append(job)
    facts = {"cell": {"run_name": cell.run_name, "key": cell.key, "folder": str(cell.folder.relative_to(runs))},
             "grouping_key": _grouping_key(cfg, spec, monkeypatch), "speed_key": speed_key(spec.config, 1),
             "jobs": jobs}
    parents = list(recorder.runs.values())
    if parents:  # the parent run of an STL/GMTL cell; its params: those that differ from its first job's
        parent = dict(parents[0])
        parent["params_differing"] = _differing(first_params, parent.pop("params"))
        facts["parent_run"] = parent
    facts["experiments"] = sorted(set(recorder.experiments))  # the MLflow experiments its runs go to
    return facts


def launcher_facts(cfg) -> dict:
    """How a launcher's jobs are counted and threaded (with the cores and environment given, not this machine's)."""
    from mtlv.launch import default_threads, joblib_workers, submitted_to_cluster
    from mtlv.study.command import workers

    launcher = cfg.hydra.launcher
    return {"target": str(launcher._target_), "submitted_to_cluster": submitted_to_cluster(cfg),
            "joblib_workers_16_cores": joblib_workers(launcher, 16),
            "study_workers": workers(cfg),
            "default_threads_16_cores": default_threads(launcher, {}, 16),
            "default_threads_slurm_8_cpus": default_threads(launcher, {"SLURM_CPUS_PER_TASK": "8"}, 16)}


def baseline_facts(cfg, recorder: Recorder) -> dict:
    from mtlv.baselines.job import BaselineSpec, log_run
    from mtlv.data.splits import load_or_make_split
    from mtlv.data.load import load_corpus

    corpus = load_corpus(cfg)
    split = load_or_make_split(corpus, cfg.paths.cache_dir, seed=int(cfg.seed), **cfg.split)
    spec = BaselineSpec.resolve(cfg)
    folder = spec.job.folder
    folder.mkdir(parents=True, exist_ok=True)
    run_id = log_run(spec, _report(corpus, split, list(range(corpus.num_labels))), 1.0, 1234)
    return {"experiments": sorted(set(recorder.experiments)), "key": spec.key, "arch": spec.arch,
            "run_name": spec.run_name, "folder": str(folder.relative_to(Path(cfg.paths.runs_dir))),
            "run": recorder.runs[run_id]}


def study_facts(tmp_path: Path) -> dict:
    from mtlv.study.command import compose_study, dataset_sweeps, study_folder
    from mtlv.study.plan import make_plan

    (tmp_path / "conf" / "study").mkdir(parents=True)
    (tmp_path / "conf" / "study" / "golden.yaml").write_text(STUDY)
    cfg, user = compose_study([f"hydra.searchpath=[file://{tmp_path / 'conf'}]", *STUDY_ARGS])
    plan = make_plan(dataset_sweeps(cfg, user, []), say=lambda *a: None)
    runs = Path(cfg.paths.runs_dir)
    return {"folder": study_folder(cfg, user, plan).name,
            "sweeps": [{"name": s.name, "command": s.command()[1:]} for s in plan.sweeps],
            "jobs": [{"sweep": plan.sweeps[j.sweep].name, "title": j.title, "arch": j.arch,
                      "folder": str(j.folder.relative_to(runs)), "cell": str(j.cell.relative_to(runs)),
                      "model_key": j.model_key, "reuses": j.reuses, "speed_key": j.speed_key} for j in plan.jobs],
            "notes": plan.notes}


# ---- comparison -------------------------------------------------------------------------------------------

def _normal(value, tmp: list[str]):
    """JSON-ready, with the test's temporary folder written as <tmp> (the only machine-dependent part)."""
    if isinstance(value, dict):
        return {str(k): _normal(v, tmp) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normal(v, tmp) for v in value]
    if isinstance(value, str):
        for root in tmp:
            value = value.replace(root, "<tmp>")
        return value
    return value


def _flat(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}.{key}" if prefix else key).items()}
    if isinstance(value, list) and value:
        return {k: v for i, item in enumerate(value) for k, v in _flat(item, f"{prefix}[{i}]").items()}
    return {prefix: value}


def differences(expected, actual) -> list[str]:
    """One line per key that differs, is missing or is new."""
    want, got = _flat(expected), _flat(actual)
    lines = []
    for key in sorted(set(want) | set(got)):
        if key not in got:
            lines.append(f"  missing  {key}: {want[key]!r}")
        elif key not in want:
            lines.append(f"  new      {key}: {got[key]!r}")
        elif want[key] != got[key]:
            lines.append(f"  changed  {key}: {want[key]!r} -> {got[key]!r}")
    return lines


def check_golden(case: str, facts: dict, tmp_path: Path) -> None:
    actual = json.loads(json.dumps(_normal(facts, [str(tmp_path.resolve()), str(tmp_path)])))
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if REGEN:
        golden[case] = actual
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(dict(sorted(golden.items())), indent=1, sort_keys=True) + "\n")
        pytest.skip(f"MTLV_REGEN_GOLDEN=1: {GOLDEN.name}[{case}] rewritten; review its diff")
    assert case in golden, f"{case}: not in {GOLDEN}; write it with MTLV_REGEN_GOLDEN=1 (and review the diff)"
    diff = differences(golden[case], actual)
    if diff:
        shown = "\n".join(diff[:60]) + (f"\n  ... {len(diff) - 60} more" if len(diff) > 60 else "")
        pytest.fail(f"{case}: {len(diff)} key(s) or name(s) differ from {GOLDEN.name}; finished outputs would no "
                    f"longer be found. If the change is deliberate, rerun with MTLV_REGEN_GOLDEN=1 and review the "
                    f"diff.\n{shown}", pytrace=False)


# ---- the tests ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_train_keys_and_names(case, recorder, tmp_path, monkeypatch):
    cfg = compose(TRAIN_CASES[case], return_hydra=True)
    facts = train_facts(cfg, recorder, monkeypatch)
    if cfg.hydra.launcher._target_ != "hydra._internal.core_plugins.basic_launcher.BasicLauncher":
        facts["launcher"] = launcher_facts(cfg)
    check_golden(case, facts, tmp_path)


@pytest.mark.parametrize("case", list(BASELINE_CASES))
def test_baseline_keys_and_names(case, recorder, tmp_path):
    check_golden(case, baseline_facts(compose(BASELINE_CASES[case], config_name="baseline"), recorder), tmp_path)


def test_study_keys_and_names(recorder, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)  # a job's speed class counts its threads
    check_golden("study", study_facts(tmp_path), tmp_path)


def test_golden_file_has_only_these_cases():
    if REGEN:
        pytest.skip("MTLV_REGEN_GOLDEN=1")
    assert set(json.loads(GOLDEN.read_text())) == {*TRAIN_CASES, *BASELINE_CASES, "study"}


def test_the_comparison_names_what_differs():
    assert differences({"a": {"b": 1, "c": [1, 2]}}, {"a": {"b": 2, "c": [1], "d": 0}}) == [
        "  changed  a.b: 1 -> 2", "  missing  a.c[1]: 2", "  new      a.d: 0"]
