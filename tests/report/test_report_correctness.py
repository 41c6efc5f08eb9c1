"""What the report must not do: count a group job run on its own as a GMTL result, choose a setting on test
when validation metrics are missing, or average over different label sets without saying so."""
from __future__ import annotations

import shutil

import pytest
from report.conftest import add_run, metrics, params

from mtlv import tracking
from mtlv.config import compose
from mtlv.report.collect import collect
from mtlv.report.page import build_report
from mtlv.report.reference import Reference
from mtlv.report.study_tables import grid_table, main_table


@pytest.fixture(scope="module")
def flawed_store(tmp_path_factory, empty_db):
    folder = tmp_path_factory.mktemp("flawed")
    shutil.copy(empty_db, folder / "mlflow.db")
    uri = f"sqlite:///{folder}/mlflow.db"
    exp = tracking.experiment_id(uri, "openi", str(folder / "mlartifacts"))
    job = {"mtlv.role": "job"}
    for fold in (0, 1):
        add_run(uri, exp, f"mtl-bert-fold{fold}", {"arch": "mtl", **job}, params("mtl", "bert", fold, 42),
                {**metrics(0.70 + fold / 50), "test/n_undefined": fold})          # fold 1 scored one label fewer
        gmtl = params("gmtl", "bert", fold, 42, "kmedoids", "description", 3)
        parent = add_run(uri, exp, f"gmtl-bert-description-k3-fold{fold}", {"arch": "gmtl", "mtlv.role": "parent"},
                         gmtl, metrics(0.3017 + fold / 100, val=0.5))
        add_run(uri, exp, f"gmtl-bert-description-k3-fold{fold}", {"arch": "gmtl", **job, "group_index": "0",
                                                                  "mlflow.parentRunId": parent},
                {**gmtl, "arch.placement": "models", "group_index": 0}, metrics(0.99))
        for feature, score in (("name", 0.9), ("description", 0.5)):   # GMHL without validation metrics
            m = metrics(score)
            del m["val_best/f1_macro"]
            add_run(uri, exp, f"gmhl-bert-{feature}-k3-fold{fold}", {"arch": "gmhl", **job},
                    params("gmhl", "bert", fold, 42, "kmedoids", feature, 3), m)
    # `hydra.mode=RUN group_index=2` of the fold-0 GMTL cell, later than its sweep: no parent run
    add_run(uri, exp, "gmtl-bert-description-k3-fold0", {"arch": "gmtl", **job},
            {**params("gmtl", "bert", 0, 42, "kmedoids", "description", 3), "arch.placement": "models",
             "group_index": 2}, metrics(0.2695))
    return uri


def test_a_lone_group_job_is_no_result_and_is_named(flawed_store):
    data = collect(flawed_store)
    gmtl = data.runs[data.runs.arch == "gmtl"].set_index("fold")
    assert list(gmtl.f1_macro) == pytest.approx([0.3017, 0.3117])                # the aggregates, not 0.2695
    assert len(data.warnings) == 1 and "group 2" in data.warnings[0] and "1 STL/GMTL group job" in data.warnings[0]


def test_missing_validation_metrics_never_choose_on_test(flawed_store):
    runs = collect(flawed_store).runs
    gmhl = main_table(runs, "openi", Reference.load()).raw.set_index("arch").loc["gmhl"]
    assert gmhl.setting == "" and gmhl.n == 0                                     # not label-k3 (best on test)
    grid = grid_table(runs, "openi", Reference.load())
    assert not grid.bold.loc[grid.frame.Architecture == "gmhl"].any().any()
    assert main_table(runs, "openi", Reference.load(), criterion="f1_macro").raw.set_index(
        "arch").loc["gmhl"].setting == "label-k3"                                 # only when asked for


def test_fold_means_over_different_label_sets_are_flagged(flawed_store):
    table = main_table(collect(flawed_store).runs, "openi", Reference.load())
    shown = table.frame.set_index("Architecture")["F1-macro"]
    assert shown["mtl"].endswith("‡") and not shown["gmtl"].endswith("‡")
    assert any(n.startswith("‡") and "n_undefined" in n for n in table.notes)


def test_report_page_warns(flawed_store, tmp_path):
    text = build_report(compose([f"tracking_uri={flawed_store}", f"out={tmp_path}", "plots=false"],
                                config_name="report")).read_text()
    assert "without their sweep are left out" in text
    assert "no validation F1-macro for gmhl/bert: description-k3 (2 of 2 runs)" in text
    assert "gmhl/bert: label-k3 (2 of 2 runs)" in text
    assert "chose each decision threshold on the test set" in text
