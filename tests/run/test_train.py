"""MTL and GMHL end to end on the tiny model: files, metrics and the MLflow record."""
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import TINY, mlflow_runs, run_cli, tiny_trainable_params

from mtlv.config import compose
from mtlv.evaluation.evaluate import evaluate
from mtlv.evaluation.predictions import Predictions
from mtlv.run.job import run_job

GMHL = ["arch=gmhl", "clustering=given", "clustering.groups=[[0,1,2],[3,4],[5,6,7]]"]


@pytest.mark.parametrize("arch", [["arch=mtl"], GMHL], ids=["mtl", "gmhl"])
def test_fast_dev_run(tmp_path, arch):
    cfg = compose([*TINY, *arch, "trainer.fast_dev_run=true", f"paths.output_dir={tmp_path}", "logger=none"])
    result = run_job(cfg)
    folder = Path(result["folder"])
    test = Predictions.load(folder / "predictions_test.csv")
    assert test.probs.shape == (40, 8) and ((test.probs >= 0) & (test.probs <= 1)).all()
    assert len(set(test.ids)) == 40
    assert json.loads((folder / "result.json").read_text())["key"] == result["key"]
    assert (folder / "export" / "model.safetensors").exists()


@pytest.fixture(scope="module")
def gmhl_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gmhl")
    proc = run_cli("mtlv.train", [*TINY, *GMHL, "trainer.max_epochs=2"], out)
    return out, proc


def test_gmhl_lands_in_mlflow_with_params_metrics_artifacts(gmhl_run):
    out, proc = gmhl_run
    runs = mlflow_runs(out)
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["tags.mlflow.runName"] == "gmhl-tiny-given"
    assert run["params.seed"] == "42" and run["params.arch.name"] == "gmhl"
    assert run["params.group.1"] == "Atelectasis, Calcified granuloma"
    assert run["params.env.torch"] and run["params.env.git_commit"]
    for key in ("test/f1_macro", "test/f1_micro", "test/subset_accuracy", "test/head0/f1_macro",
                "test_at_0.5/f1_macro", "time/elapsed_s"):
        assert np.isfinite(run[f"metrics.{key}"]), key
    assert run.run_id in proc.stdout and "mlflow ui --backend-store-uri" in proc.stdout
    # one model with 3 heads over the 8 labels: its trainable parameters, in result.json and as a metric
    result = json.loads(next((out / "runs" / "demo").glob("gmhl-*/model/result.json")).read_text())
    assert result["trainable_params"] == tiny_trainable_params([8]) == run["metrics.model/trainable_params"]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{out}/mlflow.db")
    for key in ("val/f1_macro", "val/head2/f1_macro", "train/loss_head0", "train/loss_epoch"):
        assert len(client.get_metric_history(run.run_id, key)) == 2, key  # one value per epoch
    label_keys = [k for k in run.index if k.startswith("metrics.val/f1/")]
    assert len(label_keys) >= 6
    artifacts = {a.path for a in client.list_artifacts(run.run_id)}
    assert {"classification_report.csv", "predictions_test.csv", "predictions_val.csv", "label_counts.csv",
            "config.yaml", "groups.yaml", "metrics.json", "per_label_f1.png"} <= artifacts
    assert any(a.endswith(".npz") for a in artifacts)  # the split indices


def test_logged_metrics_equal_recomputed_from_predictions(gmhl_run):
    out, _ = gmhl_run
    run = mlflow_runs(out).iloc[0]
    folder = next((out / "runs" / "demo").glob("gmhl-*/model"))
    val = Predictions.load(folder / "predictions_val.csv")
    test = Predictions.load(folder / "predictions_test.csv")
    report = evaluate(val, test, [[0, 1, 2], [3, 4], [5, 6, 7]])
    assert run["metrics.test/f1_macro"] == pytest.approx(report["test"]["f1_macro"])
    assert run["metrics.test/subset_accuracy"] == pytest.approx(report["test"]["subset_accuracy"])
    assert float(run["params.eval.chosen_threshold"]) == pytest.approx(report["threshold"])
    counts = pd.read_csv(folder / "label_counts.csv", index_col=0)
    assert counts.loc["(documents)"].tolist() == [200, 136, 24, 40]
    assert (counts.loc["Cardiomegaly", ["train", "val", "test"]].sum() == counts.loc["Cardiomegaly", "total"])


def test_rerun_prints_the_saved_summary_without_retraining(gmhl_run):
    out, first = gmhl_run
    folder = next((out / "runs" / "demo").glob("gmhl-*/model"))
    saved = json.loads((folder / "result.json").read_text())
    checkpoint = folder / "checkpoints" / "last.ckpt"
    before = checkpoint.stat().st_mtime_ns, (folder / "result.json").stat().st_mtime_ns
    with_bar = [a for a in TINY if "progress_bar" not in a]  # a progress bar would show any training
    proc = run_cli("mtlv.train", [*with_bar, *GMHL, "trainer.max_epochs=2"], out)
    assert "Epoch" not in proc.stdout + proc.stderr
    assert (checkpoint.stat().st_mtime_ns, (folder / "result.json").stat().st_mtime_ns) == before
    assert len(mlflow_runs(out)) == 1
    assert "not retrained" in proc.stdout and "resume=false retrains" in proc.stdout
    row = re.search(r"^test @ val-chosen threshold +([\d.]+) +([\d.]+) +([\d.]+)$", proc.stdout, re.M)
    test = saved["test"]
    assert [float(v) for v in row.groups()] == [round(test[k], 4) for k in ("f1_macro", "f1_micro", "subset_accuracy")]
    assert f"threshold chosen on validation: {saved['threshold']}\n" in proc.stdout
    assert f"MLflow run id: {saved['run_id']}\n" in proc.stdout
    assert f"mlflow ui --backend-store-uri sqlite:///{out}/mlflow.db" in proc.stdout
    assert f"outputs: {folder}  (" in proc.stdout
    # the same summary as the first run's, plus the line saying it was not retrained
    summary = first.stdout[first.stdout.index("\n== gmhl-tiny-given"):].strip()
    assert proc.stdout[proc.stdout.index("\n== gmhl-tiny-given"):].strip().startswith(summary)


def test_splits_are_shared_between_architectures(gmhl_run, tmp_path):
    out, _ = gmhl_run
    cfg = compose([*TINY, "trainer.fast_dev_run=true", f"paths.output_dir={out}", "logger=none"])
    run_job(cfg)
    splits = list((out / "cache" / "splits").glob("*.npz"))
    assert len(splits) == 1  # MTL reused the split GMHL saved
