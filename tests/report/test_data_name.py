"""A dataset's results are kept under a name of its data (`cell.data_name`): its MLflow experiment and the `dataset`
tag that keys the report's sections, deduplication and comparisons. Every CSV used to be `csv`: two files in one
store became one report section, a TF-IDF result of one file was compared with MTL on another, and one file's MTL
result vanished as a duplicate of the other's (same name, fold and seed)."""
from __future__ import annotations

import shutil

import pytest
from helpers import CSV_OPTIONS, write_notes

from mtlv import tracking
from mtlv.config import compose
from mtlv.data.load import data_fingerprint, data_name, experiment_name

FAST = ["model=tiny", "trainer.max_epochs=1", "callbacks.progress_bar=null", "trainer.enable_progress_bar=false",
        "eval.save_weights=false", "torch_threads=1", "split.folds=2", "split.fold=0"]


def csv_cfg(path, *extra):
    return compose([*CSV_OPTIONS, f"dataset.path='{path}'", *extra])


def write_other(path, n: int = 120):
    """A file with other texts and other labels (radiology words) than `write_notes`'s, under the same name."""
    import csv

    words = {"effusion": "pleural fluid blunting", "nodule": "round opacity lesion", "edema": "vascular congestion"}
    names = list(words)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["note", "codes"])
        for i in range(n):
            chosen = [names[i % 3]] + ([names[(i + 1) % 3]] if i % 4 == 0 else [])
            writer.writerow([f"chest film {i} " + " ".join(words[c] for c in chosen), "|".join(chosen)])
    return path


def test_builtin_datasets_keep_their_names():
    for dataset in ("openi", "ohsumed", "demo"):
        cfg = compose([f"dataset={dataset}"])
        assert data_name(cfg) == experiment_name(cfg) == dataset          # no data read: finished work resumes


def test_a_csv_is_named_by_its_file_and_data(tmp_path):
    a, b, copy = tmp_path / "a" / "notes.csv", tmp_path / "b" / "notes.csv", tmp_path / "c" / "my notes!.csv"
    for path in (a, b, copy):
        path.parent.mkdir()
    write_notes(a, seed=0)
    write_other(b)
    shutil.copy(a, copy)
    name_a = data_name(csv_cfg(a))
    assert name_a == f"notes-{data_fingerprint(csv_cfg(a))[:8]}" and len(name_a) == len("notes-") + 8
    assert data_name(csv_cfg(b)).startswith("notes-") and data_name(csv_cfg(b)) != name_a   # same file name
    assert data_name(csv_cfg(copy)) == f"my_notes-{name_a.split('-')[1]}"                    # same data
    # a dataset.limit subset (drawn per seed) is still this file's data: one section for all its seeds
    assert data_name(csv_cfg(a, "dataset.limit=50", "seed=1")) == data_name(csv_cfg(a, "dataset.limit=60")) == name_a
    assert experiment_name(csv_cfg(a)) == name_a
    assert data_name(csv_cfg(a, "dataset.name=clinic")) == experiment_name(csv_cfg(a, "dataset.name=clinic")) == "clinic"
    assert experiment_name(csv_cfg(a, "logger.experiment_name=mine")) == "mine"


@pytest.fixture(scope="module")
def two_files(tmp_path_factory, empty_db):
    """MTL on two different files both named notes.csv (same fold, seed, model) and a TF-IDF baseline on the first,
    all in one store; then the report."""
    from mtlv.baselines.job import run_baseline
    from mtlv.report.page import build_report
    from mtlv.run.job import run_job

    out = tmp_path_factory.mktemp("two-csvs")
    shutil.copy(empty_db, out / "mlflow.db")
    a, b = out / "a" / "notes.csv", out / "b" / "notes.csv"
    a.parent.mkdir()
    b.parent.mkdir()
    write_notes(a, seed=0)
    write_other(b)
    common = [*FAST, f"paths.output_dir={out}"]
    results = {path: run_job(csv_cfg(path, *common))["test"]["f1_macro"] for path in (a, b)}
    run_baseline(compose([*CSV_OPTIONS, f"dataset.path={a}", f"paths.output_dir={out}", "split.folds=2",
                          "split.fold=0"], config_name="baseline"))
    uri = f"sqlite:///{out}/mlflow.db"
    page = build_report(compose([f"tracking_uri={uri}", f"out={out / 'report'}", "plots=false", "html=false"],
                                config_name="report"))
    return uri, page, {data_name(csv_cfg(p)): f1 for p, f1 in results.items()}


@pytest.mark.slow
def test_two_csvs_are_two_experiments_and_two_sections_never_compared(two_files):
    from mtlv.report.collect import collect

    uri, page, f1 = two_files
    name_a, name_b = f1
    experiments = {e.name for e in tracking.client(uri).search_experiments()}
    assert {name_a, name_b} <= experiments and "csv" not in experiments
    runs = collect(uri).runs
    assert sorted(zip(runs.dataset, runs.arch)) == sorted([(name_a, "baseline-tfidf-logreg"), (name_a, "mtl"),
                                                           (name_b, "mtl")])
    for name, value in f1.items():                                   # neither MTL result vanished as a duplicate
        assert runs[(runs.dataset == name) & (runs.arch == "mtl")].f1_macro.item() == pytest.approx(value)
    text = page.read_text(encoding="utf-8")
    sections = {s.split("\n", 1)[0]: s for s in text.split("\n## ")[1:]}
    assert set(sections) == {name_a, name_b}
    assert "baseline-tfidf-logreg" in sections[name_a] and "baseline-tfidf" not in sections[name_b]
    assert "below the best classical baseline" not in sections[name_b]


@pytest.mark.slow
def test_a_csv_job_tracked_later_without_its_data_file_goes_under_its_data_name(tmp_path, empty_db):
    """`mtlv.track` logs a job trained with logger=none under the name its data had when it trained (kept in its
    result.json): the data file need not be on the machine that tracks it."""
    from mtlv.report.collect import collect
    from mtlv.run.importer import track
    from mtlv.run.job import run_job

    data = write_notes(tmp_path / "notes.csv", seed=3)
    name = data_name(csv_cfg(data))
    run_job(csv_cfg(data, *FAST, f"paths.output_dir={tmp_path}", "logger=none"))
    data.unlink()
    shutil.copy(empty_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert track(tmp_path / "runs", uri) == 1
    assert name in {e.name for e in tracking.client(uri).search_experiments()}
    assert collect(uri).runs.dataset.tolist() == [name]


def test_results_of_several_files_logged_as_csv_before_are_named_in_a_warning(tmp_path, empty_db):
    """A store from before: every CSV's results are tagged `csv`. The report cannot tell their data apart, and
    says so, naming the files and how to select one (a filter the store accepts)."""
    from mtlv.report.collect import collect

    shutil.copy(empty_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    exp = tracking.experiment_id(uri, "csv", str(tmp_path / "mlartifacts"))
    for i, path in enumerate(("/data/a/notes.csv", "/data/b/notes.csv")):
        run = tracking.create_run(uri, exp, "mtl-tiny", {"dataset": "csv", "arch": "mtl", "cell": f"mtl-{i}",
                                                         "mtlv.role": "job"})
        tracking.log_to_run(uri, run, params={"dataset.path": path, "seed": 42, "model.name": "tiny"},
                            metrics={"test/f1_macro": 0.5 + i / 10})
        tracking.end_run(uri, run)
    warning = [w for w in collect(uri).warnings if "dataset 'csv'" in w]
    assert len(warning) == 1 and "/data/a/notes.csv, /data/b/notes.csv" in warning[0]
    selected = collect(uri, filter_string="params.`dataset.path` = '/data/b/notes.csv'")
    assert selected.runs.f1_macro.tolist() == [pytest.approx(0.6)] and not selected.warnings
