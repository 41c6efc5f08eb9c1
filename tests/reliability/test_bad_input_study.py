"""Bad input to a study, a report and a baseline (issue 28): one `error:` line and exit 2 before any work, where
a traceback or a silently smaller study was before; and a binary dataset (one label), which is trained, not
refused. Entry points run in-process (tests/reliability/_support.py)."""
from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from helpers import CSV_OPTIONS, write_notes
from reliability._support import FAST, assert_short_error

from mtlv.config import compose
from mtlv.data.corpus import Corpus
from mtlv.errors import ConfigError

STUDY = "mtlv.study.__main__"


@pytest.fixture
def study_args(tmp_path) -> list[str]:
    """The quick study on a fresh CSV, planned only."""
    notes = write_notes(tmp_path / "notes.csv")
    return ["study=quick", *CSV_OPTIONS, f"dataset.path={notes}", "model=tiny", "study.dry_run=true"]


def _written(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")) if out.exists() else []


# ----------------------------------------------------------------------------- study options (items 9, 10)
@pytest.mark.parametrize("option, needles", [
    # a typo silently dropped GMTL; a bogus grid planned the baselines alone; folds=0 was a ZeroDivisionError and
    # -2 printed negative document counts
    ("study.archs=[mtl,gmlt]", ["study.archs=[mtl,gmlt]: gmlt is not an architecture", "stl, mtl, gmhl, gmtl, baseline"]),
    ("study.archs=mtl", ["study.archs=mtl: give a list, e.g. study.archs=[mtl]"]),
    ("study.run_grids=[bogus]", ["study.run_grids=[bogus]: bogus is not a grid of study quick",
                                 "use one_model, gmtl, stl"]),
    ("study.only_datasets=[bogus]", ["study.only_datasets=[bogus]: study quick names no datasets",
                                     "leave study.only_datasets out"]),
    ("study.folds=0", ["study.folds=0: must be at least 2", "cross-validation needs at least 2 folds"]),
    ("study.folds=-2", ["study.folds=-2: must be at least 2"]),
], ids=["archs-typo", "archs-word", "run_grids", "only_datasets", "folds0", "folds-2"])
def test_a_study_option_that_selects_nothing_is_an_error(entry, tmp_path, study_args, option, needles):
    code, out, err = entry(*study_args, option, module=STUDY)
    assert_short_error(code, err, *needles)
    assert "[study] planning" not in out and _written(tmp_path / "out") == []  # before any work


def test_only_datasets_names_the_studys_datasets(entry, tmp_path):
    code, _, err = entry("study=thesis", "study.only_datasets=[openi,ohsumd]", "study.dry_run=true", module=STUDY)
    assert_short_error(code, err, "study.only_datasets=[openi,ohsumd]: ohsumd is not a dataset of study thesis",
                       "use openi, ohsumed")
    code, _, err = entry("study=thesis", "study.only_datasets=[openi]", "dataset=csv", "dataset.path=x.csv",
                         "study.dry_run=true", module=STUDY)
    assert_short_error(code, err, "study.only_datasets=[openi] and dataset=csv: the command's dataset replaces")


def test_folds_below_two_are_an_error_line_wherever_the_corpus_is_checked():
    """check_corpus divided by split.folds before checking it (the study loads its data before the jobs' own
    option checks): ZeroDivisionError at 0."""
    from mtlv.data.checks import check_corpus

    rng = np.random.default_rng(0)
    corpus = Corpus("t", [str(i) for i in range(40)], [f"text {i}" for i in range(40)],
                    rng.random((40, 3)) < 0.4, ["a", "b", "c"])
    for folds in (0, -2, 1):
        with pytest.raises(ConfigError, match=f"split.folds={folds}: cross-validation needs at least 2 folds"):
            check_corpus(compose([f"split.folds={folds}"]), corpus)


def test_an_unwritable_output_folder_is_one_line_before_the_plan(entry, tmp_path, study_args):
    """An output folder that cannot be written (here: below a file; also what a read-only folder gives a user who
    is not root) was an OSError traceback from the first cache file the plan wrote."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, out, err = entry(*study_args, f"paths.output_dir={blocker}/out", module=STUDY)
    assert_short_error(code, err, f"paths.output_dir={blocker}/out: cannot write there", "paths.output_dir=/a/writable")
    assert "[study] planning" not in out
    code, out, err = entry(*study_args, f"paths.runs_dir={blocker}/runs", module=STUDY)
    assert_short_error(code, err, f"paths.runs_dir={blocker}/runs: cannot write there", "set paths.runs_dir=")


# ----------------------------------------------------------------------------- one label, constant labels
def _binary_rows(n: int = 80, seed: int = 0) -> list[dict]:
    """One label, `fever`, on about a third of the notes, given away by the word `hot` (the others say `cold`)."""
    rng = random.Random(seed)
    filler = "clinic plan follow patient stable reviewed history".split()
    rows = []
    for _ in range(n):
        positive = rng.random() < 0.35
        words = [rng.choice(filler) for _ in range(6)] + (["hot", "fever"] if positive else ["cold"])
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "labels": "fever" if positive else ""})
    return rows


def test_a_single_label_split_is_stratified():
    """iterstrat refuses one label column ("Got 'binary'"); scikit-learn's stratifiers split it instead: every part
    keeps the label's rate (within a document), also per fold."""
    from mtlv.data.splits import compute_split

    labels = np.zeros((100, 1), dtype=np.uint8)
    labels[::4] = 1  # 25 positives
    corpus = Corpus("t", [str(i) for i in range(100)], [f"text {i}" for i in range(100)], labels, ["fever"])
    split = compute_split(corpus, None, 0, 0.2, 0.15, seed=3)
    assert sorted(np.concatenate([split.train, split.val, split.test]).tolist()) == list(range(100))
    assert (len(split.test), len(split.val)) == (20, 12)
    assert labels[split.test].sum() == 5 and abs(int(labels[split.val].sum()) - 3) <= 1
    tests = [compute_split(corpus, 4, fold, 0.2, 0.15, seed=3).test for fold in range(4)]
    assert sorted(np.concatenate(tests).tolist()) == list(range(100))
    assert sorted(int(labels[t].sum()) for t in tests) == [6, 6, 6, 7]
    rare = np.zeros((100, 1), dtype=np.uint8)
    rare[7] = 1  # one positive cannot be stratified (scikit-learn refuses it): split at random
    one = Corpus("t", corpus.ids, corpus.texts, rare, ["fever"])
    assert len(compute_split(one, None, 0, 0.2, 0.15, seed=3).test) == 20


def test_a_binary_dataset_trains_and_its_baseline_scores_the_positive_class(entry, table, tmp_path):
    path = table(_binary_rows())
    args = ["dataset=csv", f"dataset.path={path}", "logger=none"]
    code, out, err = entry(*args, *FAST, module="mtlv.train")
    assert code == 0, err
    (result,) = [json.loads(p.read_text()) for p in (tmp_path / "out" / "runs").rglob("result.json")]
    assert 0 <= result["test"]["f1_macro"] <= 1
    for classifier in ("logreg", "random_forest"):
        code, out, err = entry(*args, f"baseline.classifier={classifier}", module="mtlv.baseline")
        assert code == 0, err
        (folder,) = (tmp_path / "out" / "runs" / "csv").glob(f"baseline-tfidf-{classifier}-*")
        # `hot` gives the label away: F1 1.0 with the positive class's probability (with the other class's column,
        # as scikit-learn returns both for one label, the test F1 was 0.55)
        result = json.loads((folder / "result.json").read_text())
        assert result["test"]["f1_macro"] == 1.0, (classifier, result)


@pytest.mark.parametrize("module", ["mtlv.train", "mtlv.baseline"])
def test_a_dataset_whose_labels_never_vary_is_refused(entry, table, module):
    rows = [{"text": f"note {i} clinic plan", "labels": "fever"} for i in range(40)]
    code, _, err = entry("dataset=csv", f"dataset.path={table(rows)}", "logger=none", *(FAST if module == "mtlv.train"
                                                                                      else []), module=module)
    assert_short_error(code, err, "every label is the same on all 40 documents ('fever' on all of them)",
                       "nothing to learn", "documents without the label")


# ----------------------------------------------------------------------------- mtlv.report (items 9, 11)
def test_report_names_an_unknown_experiment_and_a_malformed_filter(entry, table, tmp_path):
    code, _, err = entry("dataset=csv", f"dataset.path={table(_binary_rows())}", module="mtlv.baseline")
    assert code == 0, err
    store = tmp_path / "out"
    code, out, err = entry(f"paths.output_dir={store}", "experiments=[nonexistent]", f"out={tmp_path}/report",
                           module="mtlv.report.__main__")
    assert_short_error(code, err, "experiments=['nonexistent']: nonexistent is not an experiment of sqlite:///",
                       "it has: Default, data-")  # a CSV's experiment is its file name + fingerprint
    assert "No finished runs" not in out
    code, out, err = entry(f"paths.output_dir={store}", "filter='params.seed = 42'", f"out={tmp_path}/report",
                           module="mtlv.report.__main__")
    assert_short_error(code, err, "filter='params.seed = 42': not an MLflow search filter",
                       "Expected a quoted string value", "values quoted")
    assert "MlflowException" not in err
    code, out, err = entry(f"paths.output_dir={store}", "filter=\"params.seed = '42'\"",
                           f"out={tmp_path}/report", "plots=false", module="mtlv.report.__main__")
    assert code == 0, err


# ----------------------------------------------------------------------------- small defects (item 21)
def test_lone_group_warning_names_each_group_once():
    from mtlv.report.collect import lone_group_warning

    def run(name, index):
        return SimpleNamespace(info=SimpleNamespace(run_name=name), data=SimpleNamespace(params={"group_index": index}))

    (warning,) = lone_group_warning([run("gmtl-tiny-k2/g1: fever, cough", "1"), run("gmtl-tiny-k2", "0")])
    assert "(gmtl-tiny-k2 (group 0), gmtl-tiny-k2/g1: fever, cough)" in warning and "(group 1)" not in warning


def test_a_baseline_refused_by_min_df_leaves_no_job_folder(entry, table, tmp_path):
    rows = [{"text": f"w{i}x v{i}y", "labels": "a" if i % 2 else "b"} for i in range(60)]
    code, _, err = entry("dataset=csv", f"dataset.path={table(rows)}", "baseline.min_df=5", "logger=none",
                         module="mtlv.baseline")
    assert_short_error(code, err, "baseline.min_df=5: no term is in 5")
    assert not list((tmp_path / "out" / "runs").rglob("baseline-*"))


@pytest.mark.parametrize("module", ["mtlv.train", "mtlv.baseline", STUDY])
def test_a_launcher_value_hydra_types_is_one_error_line(entry, tmp_path, study_args, module):
    """hydra.launcher.n_jobs=abc ended Hydra's composition with its own four-line message (exit 1)."""
    args = study_args if module == STUDY else ["-m", *FAST, "logger=none"]
    code, out, err = entry(*args, "hydra/launcher=parallel", "hydra.launcher.n_jobs=abc", module=module)
    assert_short_error(code, err, "hydra.launcher.n_jobs='abc': must be a whole number", "hydra.launcher.n_jobs=2")
    assert "full_key" not in err and _written(tmp_path / "out") == []


@pytest.mark.parametrize("module, option", [("mtlv.train", "paths.cache_dir"), ("mtlv.baseline", "paths.runs_dir"),
                                            ("mtlv.report.__main__", "out")])
def test_an_unwritable_cache_job_or_report_folder_is_one_line(entry, table, tmp_path, module, option):
    """paths.output_dir was checked, but not the cache and job folders set apart from it, nor the report's `out`:
    an OSError traceback from the first split file, job folder or table."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    if module == "mtlv.report.__main__":
        code, _, err = entry("dataset=csv", f"dataset.path={table(_binary_rows())}", module="mtlv.baseline")
        assert code == 0, err
        args = [f"paths.output_dir={tmp_path / 'out'}", "plots=false"]
    else:
        args = ["dataset=csv", f"dataset.path={table(_binary_rows())}", "logger=none", *FAST[:1]]
    code, _, err = entry(*args, f"{option}={blocker}/x", module=module)
    assert_short_error(code, err, f"{option}={blocker}/x: cannot write there", f"set {option}=/a/writable/folder")
