"""An MLflow store with known results, written through mtlv.tracking with the tags, params and metric keys
that real runs carry (job runs for MTL/GMHL/baselines, parent + group job runs for STL/GMTL)."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from report import rec_store
from report.known_store import BASELINE, GMTL_DESC_DIFF, GMTL_LABEL_DIFF, LABELS, MTL, SAMPLES

from mtlv import tracking


def params(arch, model, fold, seed, method="none", feature=None, k=None, folds=3):
    p = {"arch.name": arch, "model.name": model, "split.folds": folds, "split.fold": fold, "seed": seed,
         "dataset.limit": None, "split.val_size": 0.15, "split.test_size": 0.2, "eval.threshold": "global",
         "trainer.max_epochs": 10, "clustering.method": method}
    if method == "kmedoids":
        p.update({"clustering.feature": feature, "clustering.k": k})
    return p


def metrics(f1_macro, val=None, elapsed=10.0, sum_job=None, per_label=None):
    m = {"test/f1_macro": f1_macro, "test/f1_micro": f1_macro + 0.1, "test/subset_accuracy": f1_macro - 0.2,
         "test/n_undefined": 0, "val_best/f1_macro": f1_macro if val is None else val, "time/elapsed_s": elapsed}
    if sum_job is not None:
        m["time/sum_job_s"] = sum_job
    m.update({f"test/f1/{name}": v for name, v in (per_label or {}).items()})
    return m


def add_run(uri, exp, name, tags, p, m=None, artifacts=(), end=True):
    run_id = tracking.create_run(uri, exp, name, {"dataset": "openi", "cell": f"{name}-abc", **tags})
    tracking.log_to_run(uri, run_id, params=p, metrics=m or {}, artifacts=list(artifacts))
    if end:
        tracking.end_run(uri, run_id)
    return run_id


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory) -> Path:
    """A migrated, empty MLflow SQLite store. Creating the schema takes seconds, so each test store
    starts as a copy of this one."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    tracking.retry_locked(tracking.client(f"sqlite:///{path}").search_experiments)()
    return path


@pytest.fixture(scope="session")
def store(tmp_path_factory, empty_db):
    folder = tmp_path_factory.mktemp("store")
    shutil.copy(empty_db, folder / "mlflow.db")
    uri = f"sqlite:///{folder}/mlflow.db"
    exp = tracking.experiment_id(uri, "openi", str(folder / "mlartifacts"))
    elbow = folder / "elbow.json"
    elbow.write_text(json.dumps([{"k": k, "sum_of_distances": 10.0 / k} for k in range(1, 6)]))
    job = {"mtlv.role": "job"}
    for i, (fold, seed) in enumerate(SAMPLES):
        counts = folder / f"counts{i}" / "label_counts.csv"
        counts.parent.mkdir()
        pd.DataFrame({"total": [40, 16, 200], "train": [25, 10, 120], "val": [5, 2, 30],
                      "test": [10 + fold, 4, 50]}, index=[*LABELS, "(documents)"]).to_csv(counts)
        add_run(uri, exp, f"baseline-tfidf-logreg-fold{fold}", {"arch": "baseline-tfidf-logreg", **job},
                {k: v for k, v in params("baseline-tfidf-logreg", None, fold, seed).items()
                 if not k.startswith(("model", "trainer", "clustering"))}, metrics(BASELINE, elapsed=1.0))
        add_run(uri, exp, f"mtl-bert-fold{fold}", {"arch": "mtl", **job}, params("mtl", "bert", fold, seed),
                metrics(MTL[i], elapsed=20.0, per_label={LABELS[0]: 0.8, LABELS[1]: 0.5}), [counts])
        add_run(uri, exp, f"gmhl-bert-label-k4-fold{fold}", {"arch": "gmhl", **job},
                params("gmhl", "bert", fold, seed, "kmedoids", "name", 4), metrics(0.60, elapsed=22.0), [elbow])
        add_run(uri, exp, f"stl-bert-fold{fold}", {"arch": "stl", "mtlv.role": "parent"},
                params("stl", "bert", fold, seed), metrics(0.70, elapsed=100.0, sum_job=120.0))
        for feature, diff, val in (("name", GMTL_LABEL_DIFF, 0.60), ("description", GMTL_DESC_DIFF, 0.70)):
            name = f"gmtl-bert-{feature}-k3-fold{fold}"
            per_label = {LABELS[0]: 0.7, LABELS[1]: 0.6}
            parent = add_run(uri, exp, name, {"arch": "gmtl", "mtlv.role": "parent"},
                             params("gmtl", "bert", fold, seed, "kmedoids", feature, 3),
                             metrics(MTL[i] + diff[i], val=val, elapsed=25.0, sum_job=30.0, per_label=per_label),
                             [elbow])
            for g in range(3 if i == 0 else 0):  # group jobs: each sees only its labels, never a table row
                add_run(uri, exp, name, {"arch": "gmtl", "mtlv.role": "job", "mlflow.parentRunId": parent,
                                         "group_index": str(g)},
                        params("gmtl", "bert", fold, seed, "kmedoids", feature, 3), metrics(0.99))
    for fold in (0, 1):  # biobert: only two paired samples
        add_run(uri, exp, f"mtl-biobert-fold{fold}", {"arch": "mtl", **job}, params("mtl", "biobert", fold, 42),
                metrics(0.70 + fold / 100))
        add_run(uri, exp, f"gmtl-biobert-label-k3-fold{fold}", {"arch": "gmtl", "mtlv.role": "parent"},
                params("gmtl", "biobert", fold, 42, "kmedoids", "name", 3), metrics(0.75 + fold / 50))
    # an unfinished STL cell (parent without metrics) and a rerun of MTL fold 0 seed 42 (the later one counts)
    add_run(uri, exp, "stl-bert-fold0", {"arch": "stl", "mtlv.role": "parent"}, params("stl", "bert", 0, 7),
            end=False)
    time.sleep(0.05)
    add_run(uri, exp, "mtl-bert-fold0", {"arch": "mtl", **job}, params("mtl", "bert", 0, 42),
            metrics(MTL[0], elapsed=20.0, per_label={LABELS[0]: 0.8, LABELS[1]: 0.5}),
            [folder / "counts0" / "label_counts.csv"])
    # another study in the same store: a 2-fold smoke run of MTL
    add_run(uri, exp, "mtl-tiny-fold0", {"arch": "mtl", **job}, params("mtl", "tiny", 0, 42, folds=2), metrics(0.3))
    return uri


@pytest.fixture(scope="session")
def rec_full(tmp_path_factory, empty_db) -> str:
    """rec_store.py's store with 3 folds x 2 seeds: 6 paired samples, the fewest that can give p < 0.05."""
    return rec_store.build(tmp_path_factory.mktemp("rec-full") / "store", empty_db, **rec_store.FULL)


@pytest.fixture()
def reference_csv(tmp_path):
    path = tmp_path / "reference.csv"
    path.write_text("dataset,table,arch,model,setting,metric,value,source\n"
                    "openi,1,mtl,bert,,f1_macro,0.700,test source A\n"
                    "openi,2,gmtl,bert,description-k3,f1_macro,0.750,test source B\n"
                    "openi,4,mtl,bert,Cardiomegaly,f1,0.900,test source C\n")
    return path
