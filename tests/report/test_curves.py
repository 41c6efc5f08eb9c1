"""F1-macro vs epoch: an STL/GMTL cell's curve over its joined label matrix, the advantage sentence, and
(slow) the logged curve of a real MTL job and GMTL sweep against the final test metrics at threshold 0.5."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import TINY, mlflow_runs, run_cli

from mtlv import tracking
from mtlv.data.sources.demo import DEMO_LABELS
from mtlv.report.curves import advantage_sentence, cell_curve, job_curve


def job(epochs, val, val_n, test, test_n):
    return pd.DataFrame({"epoch": epochs, "val": val, "val_n": val_n, "test": test, "test_n": test_n})


def test_cell_curve_is_the_label_weighted_mean_over_epochs_every_job_reached():
    # group 0: 3 labels, group 1: 1 label (test: one of group 0's labels has no positives in epoch order)
    a = job([1, 2, 3], [0.2, 0.5, 0.6], [3, 3, 3], [0.3, 0.6, 0.9], [2, 2, 2])
    b = job([2, 1], [0.9, 1.0], [1, 1], [0.0, 0.6], [1, 1])     # stopped after epoch 2, rows shuffled
    curve = cell_curve([a, b]).set_index("epoch")
    assert list(curve.index) == [1, 2]                                   # epoch 3: group 1 never reached it
    assert curve.loc[1, "val"] == pytest.approx((3 * 0.2 + 1.0) / 4)
    assert curve.loc[2, "val"] == pytest.approx((3 * 0.5 + 0.9) / 4)
    assert curve.loc[1, "test"] == pytest.approx((2 * 0.3 + 0.6) / 3)
    assert curve.loc[2, "test"] == pytest.approx((2 * 0.6 + 0.0) / 3)
    assert cell_curve([]).empty
    assert cell_curve([a, job([], [], [], [], [])]).empty               # one group without a curve: no cell curve


def means(gmtl, mtl):
    rows = [{"arch": arch, "model": "m", "epoch": e + 1, "test_mean": v}
            for arch, values in (("gmtl", gmtl), ("mtl", mtl)) for e, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_advantage_sentence_names_the_epochs():
    text = advantage_sentence(means([0.86, 0.90, 0.91, 0.913], [0.76, 0.88, 0.92, 0.924]), "m")
    assert "+0.100 after epoch 1" in text and "-0.011 after epoch 4" in text
    assert "holds from epoch 1, vanishes at epoch 3" in text
    late = advantage_sentence(means([0.5, 0.6, 0.8], [0.55, 0.7, 0.75]), "m")
    assert "appears at epoch 3" in late and "vanishes" not in late
    assert "ahead after every epoch (largest gap +0.200, epoch 2)" in advantage_sentence(
        means([0.6, 0.9], [0.5, 0.7]), "m")
    assert "never ahead" in advantage_sentence(means([0.5, 0.6], [0.5, 0.7]), "m")
    assert advantage_sentence(means([0.5], [0.6]), "other") is None


@pytest.mark.slow
def test_logged_curves_match_the_final_metrics_at_threshold_one_half(tmp_path):
    """The curve point of the epoch whose checkpoint is kept equals the job's (and the GMTL cell's) final
    test F1-macro at threshold 0.5, which MTLV computes from the saved predictions by other code."""
    common = [*TINY, "trainer.max_epochs=2", "data.test_curve=true", "torch_threads=1", "eval.save_weights=false"]
    run_cli("mtlv.train", [*common, "arch=mtl"], tmp_path)
    run_cli("mtlv.train", ["-m", *common, "arch=gmtl", "clustering=kmedoids_label", "clustering.k=2"], tmp_path)
    runs = mlflow_runs(tmp_path)
    client = tracking.client(f"sqlite:///{tmp_path}/mlflow.db")

    def kept_epoch(curve):  # ModelCheckpoint keeps the first epoch with the best validation F1-macro
        return int(curve.epoch[np.argmax(curve.val.to_numpy())])

    mtl = runs[(runs["tags.arch"] == "mtl")].iloc[0]
    curve = job_curve(client, mtl.run_id)
    assert list(curve.epoch) == [1, 2]
    assert curve.set_index("epoch").test[kept_epoch(curve)] == pytest.approx(mtl["metrics.test_at_0.5/f1_macro"],
                                                                             abs=1e-6)
    parent = runs[(runs["tags.arch"] == "gmtl") & (runs["tags.mtlv.role"] == "parent")].iloc[0]
    jobs = runs[runs["tags.mlflow.parentRunId"] == parent.run_id]
    assert len(jobs) == 2
    curves = [job_curve(client, r) for r in jobs.run_id]
    # each group job keeps its own best epoch: join those points, as the cell's predictions do
    points = [(c.set_index("epoch").test[kept_epoch(c)], c.set_index("epoch").test_n[kept_epoch(c)]) for c in curves]
    joined = sum(f * n for f, n in points) / sum(n for _, n in points)
    assert joined == pytest.approx(parent["metrics.test_at_0.5/f1_macro"], abs=1e-6)
    assert sum(n for _, n in points) == len(DEMO_LABELS) - parent["metrics.test_at_0.5/n_undefined"]


def log_curve(uri, run_id, test, test_n, val=None, val_n=None):
    from mlflow.entities import Metric

    metrics = []
    for e, f1 in enumerate(test):
        step, now = 10 * (e + 1) - 1, 1000 + e
        values = {"curve/epoch": e + 1, "curve/test_f1_macro": f1, "curve/test_n_labels": test_n,
                  "val/f1_macro": (val or test)[e], "curve/val_n_labels": val_n or test_n}
        metrics += [Metric(k, float(v), now, step) for k, v in values.items()]
    tracking.client(uri).log_batch(run_id, metrics=metrics)


def test_report_draws_the_curves_of_the_shown_results(tmp_path, empty_db):
    import shutil

    from report.conftest import add_run, metrics, params

    from mtlv.config import compose
    from mtlv.report.collect import collect
    from mtlv.report.curves import mean_curves, result_curves
    from mtlv.report.page import build_report

    shutil.copy(empty_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    exp = tracking.experiment_id(uri, "openi", str(tmp_path / "mlartifacts"))
    for fold in (0, 1):
        mtl = add_run(uri, exp, f"mtl-bert-fold{fold}", {"arch": "mtl", "mtlv.role": "job"},
                      params("mtl", "bert", fold, 42), metrics(0.9))
        log_curve(uri, mtl, [0.70, 0.85, 0.90 + fold / 100], 19)
        gmtl = params("gmtl", "bert", fold, 42, "kmedoids", "description", 3)
        parent = add_run(uri, exp, f"gmtl-bert-fold{fold}", {"arch": "gmtl", "mtlv.role": "parent"}, gmtl,
                         metrics(0.9))
        for n, curve in ((15, [0.80, 0.86, 0.88]), (4, [0.80, 0.80, 0.84])):   # joined: 0.80, 0.848, 0.872
            child = add_run(uri, exp, f"gmtl-bert-fold{fold}", {"arch": "gmtl", "mtlv.role": "job",
                                                                "mlflow.parentRunId": parent}, gmtl, metrics(0.99))
            log_curve(uri, child, curve, n)
    data = collect(uri)
    means = mean_curves(result_curves(uri, data.runs)).set_index(["arch", "epoch"])
    assert means.loc[("gmtl", 2), "test_mean"] == pytest.approx((15 * 0.86 + 4 * 0.80) / 19)
    assert means.loc[("mtl", 3), "test_mean"] == pytest.approx(0.905) and means.loc[("mtl", 3), "n"] == 2
    text = build_report(compose([f"tracking_uri={uri}", f"out={tmp_path / 'report'}"], config_name="report")
                        ).read_text()
    assert "### F1-macro vs epoch (openi)" in text
    assert "- bert: GMTL − MTL test F1-macro is +0.100 after epoch 1 and -0.033 after epoch 3" in text
    assert "advantage holds from epoch 1, vanishes at epoch 2." in text     # 0.847 vs 0.850
    assert (tmp_path / "report" / "plots" / "openi_epochs_bert.png").stat().st_size > 0
    assert "plots/openi_epochs_bert.png" in text


def test_switching_the_curves_on_keeps_a_finished_job_finished():
    from mtlv.config import compose
    from mtlv.run.spec import JobSpec

    def job_key(cfg):
        return JobSpec.of(cfg).job_key
    off, on = compose(["data.test_curve=false"]), compose(["data.test_curve=true"])
    assert job_key(off) == job_key(on)
    assert job_key(off) != job_key(compose(["data.batch_size=8"]))          # a setting that matters still counts
