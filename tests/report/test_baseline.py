"""The classical baseline end to end on the demo data: sane F1, the neural runs' split, MLflow, resume."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mtlv import tracking
from mtlv.data.load import load_corpus
from mtlv.config import compose
from mtlv.data.splits import load_or_make_split
from mtlv.evaluation.evaluate import evaluate
from mtlv.evaluation.predictions import Predictions
from mtlv.io import read_json
from mtlv.report.collect import collect

OVERRIDES = ["dataset=demo", "split.folds=2", "split.fold=1"]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, empty_db):
    from mtlv.baselines.job import run_baseline

    out = tmp_path_factory.mktemp("baseline")
    shutil.copy(empty_db, out / "mlflow.db")
    cfg = compose([*OVERRIDES, f"paths.output_dir={out}"], config_name="baseline")
    return out, cfg, run_baseline(cfg)


def test_f1_is_sane_and_uses_the_validation_threshold(baseline):
    _, _, result = baseline
    # TF-IDF + logistic regression on 800 synthetic reports: well above chance, below perfect
    assert 0.75 < result["test"]["f1_macro"] < 1.0 and 0.75 < result["test"]["f1_micro"] < 1.0
    folder = Path(result["folder"])
    val, test = (Predictions.load(folder / f"predictions_{part}.csv") for part in ("val", "test"))
    report = evaluate(val, test)
    assert report["threshold"] == result["threshold"]
    assert report["test"]["f1_macro"] == pytest.approx(result["test"]["f1_macro"], abs=1e-5)


def test_same_split_as_training_jobs(baseline):
    out, _, result = baseline
    train = compose([*OVERRIDES, f"paths.output_dir={out}"])      # what `python -m mtlv.train` would use
    corpus = load_corpus(train)
    split = load_or_make_split(corpus, train.paths.cache_dir, seed=int(train.seed), **train.split)
    for part in ("val", "test"):
        ids = Predictions.load(Path(result["folder"]) / f"predictions_{part}.csv").ids
        assert ids == [corpus.ids[i] for i in getattr(split, part)]


def expected_coefficients(cfg) -> int:
    """(vocabulary + 1 intercept) per label the one-vs-rest regression fits: labels with both classes in the
    training documents (a constant label gets a constant predictor, no coefficients)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    corpus = load_corpus(cfg)
    split = load_or_make_split(corpus, cfg.paths.cache_dir, seed=int(cfg.seed), **cfg.split)
    b = cfg.baseline
    vocab = TfidfVectorizer(ngram_range=(1, b.ngram_max), min_df=b.min_df, max_features=b.max_features).fit(
        [corpus.texts[i] for i in split.train]).vocabulary_
    positives = corpus.labels[split.train].sum(axis=0)
    fitted = int(((positives > 0) & (positives < len(split.train))).sum())
    assert fitted == corpus.labels.shape[1]                   # the demo data: every label has both classes
    return (len(vocab) + 1) * fitted


def test_logged_like_any_run_and_skipped_when_rerun(baseline):
    from mtlv.baselines.job import run_baseline

    out, cfg, result = baseline
    uri = f"sqlite:///{out}/mlflow.db"
    run = tracking.client(uri).get_run(result["run_id"])
    assert run.data.tags["arch"] == "baseline-tfidf-logreg" and run.data.tags["mtlv.role"] == "job"
    assert run.data.tags["dataset"] == "demo" and run.info.status == "FINISHED"
    assert run.data.metrics["test/f1_macro"] == pytest.approx(result["test"]["f1_macro"])
    assert {"test/f1_micro", "test/subset_accuracy", "val_best/f1_macro", "time/elapsed_s"} <= set(run.data.metrics)
    assert any(k.startswith("test/f1/") for k in run.data.metrics)
    # the map from per-label metric keys back to label names, which the report reads (as for every result)
    keys = tracking.client(uri).download_artifacts(result["run_id"], "label_keys.json", str(out / "keys"))
    assert read_json(keys) == tracking.label_keys(list(load_corpus(cfg).label_names))
    assert run.data.params["split.fold"] == "1" and run.data.params["baseline.classifier"] == "logreg"
    assert run.data.metrics["model/trainable_params"] == result["trainable_params"] == expected_coefficients(cfg)
    again = run_baseline(cfg)
    assert again["run_id"] == result["run_id"]
    rows = collect(uri).runs
    assert len(rows) == 1 and rows.iloc[0].arch == "baseline-tfidf-logreg" and rows.iloc[0].fold == 1


def test_a_baseline_multirun_leaves_no_training_cells(tmp_path):
    """The sweeper prepares task groupings, model keys and cell folders for training sweeps only: a baseline
    multirun writes its own folders and nothing of an MTL cell (it used to leave one empty
    `mtl-*` cell folder per baseline job)."""
    from helpers import run_cli

    run_cli("mtlv.baseline", ["-m", *OVERRIDES, "split.fold=0,1", "baseline.features=tfidf,bow", "logger=none"],
            tmp_path)
    folders = sorted(p.name for p in (tmp_path / "runs" / "demo").iterdir())
    assert len(folders) == 4 and all(name.startswith("baseline-") for name in folders), folders
