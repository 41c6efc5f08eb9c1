"""STL and GMTL as Hydra sweeps over task groups: one child run per group, one aggregated parent."""
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from helpers import TINY, mlflow_runs, run_cli, tiny_trainable_params

from mtlv.evaluation.evaluate import evaluate
from mtlv.evaluation.predictions import Predictions, join
from mtlv.grouping.partition import TaskGrouping


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps")
    stl = run_cli("mtlv.train", [*TINY, "arch=stl"], out)
    gmtl = run_cli("mtlv.train", [*TINY, "arch=gmtl", "clustering=kmedoids_desc", "clustering.k=3"], out)
    return out, stl, gmtl


def parent_and_children(out, arch):
    runs = mlflow_runs(out)
    runs = runs[runs["tags.arch"] == arch]
    parents = runs[runs["tags.mtlv.role"] == "parent"]
    assert len(parents) == 1
    children = runs[runs["tags.mlflow.parentRunId"] == parents.iloc[0].run_id]
    return parents.iloc[0], children


@pytest.mark.parametrize("arch, groups", [("stl", 8), ("gmtl", 3)])
def test_one_child_run_per_group_and_an_aggregated_parent(sweeps, arch, groups):
    out = sweeps[0]
    parent, children = parent_and_children(out, arch)
    assert len(children) == groups
    assert sorted(children["tags.group_index"].astype(int)) == list(range(groups))
    assert parent["params.num_groups"] == str(groups)
    # the cell's size: its group models' trainable parameters added up (each job logs its own)
    sizes = [int(children[children["tags.group_index"] == str(i)]["metrics.model/trainable_params"].iloc[0])
             for i in range(groups)]
    cell_groups = TaskGrouping.load(next((out / "runs" / "demo").glob(f"{arch}-*")) / "groups.yaml").groups
    assert sizes == [tiny_trainable_params([len(g)]) for g in cell_groups]
    assert parent["metrics.model/trainable_params"] == tiny_trainable_params([len(g) for g in cell_groups])

    cell = next((out / "runs" / "demo").glob(f"{arch}-*"))
    # The parent's times come from its group jobs' result.json: summed, and first start to last end.
    results = [json.loads((cell / f"group-{i:02d}" / "result.json").read_text()) for i in range(groups)]
    assert parent["metrics.time/sum_job_s"] == pytest.approx(sum(r["elapsed_s"] for r in results), rel=1e-9)
    assert parent["metrics.time/elapsed_s"] == pytest.approx(
        max(r["end"] for r in results) - min(r["start"] for r in results), rel=1e-9)
    assert all(r["elapsed_s"] > 0 for r in results)
    grouping = TaskGrouping.load(cell / "groups.yaml")
    jobs = [cell / f"group-{i:02d}" for i in range(groups)]
    labels = list(grouping.label_names)
    val = join([Predictions.load(j / "predictions_val.csv") for j in jobs], labels)
    test = join([Predictions.load(j / "predictions_test.csv") for j in jobs], labels)
    report = evaluate(val, test, [list(g) for g in grouping.groups])
    assert parent["metrics.test/f1_macro"] == pytest.approx(report["test"]["f1_macro"])
    assert parent["metrics.test/f1_micro"] == pytest.approx(report["test"]["f1_micro"])
    assert parent["metrics.test/subset_accuracy"] == pytest.approx(report["test"]["subset_accuracy"])
    for name in labels:
        row = report["test"]["per_label"][name]
        if not np.isnan(row["f1"]):
            assert parent[f"metrics.test/f1/{name}"] == pytest.approx(row["f1"])


def test_gmtl_groups_come_from_clustering_once(sweeps):
    out, _, gmtl = sweeps
    cell = next((out / "runs" / "demo").glob("gmtl-*"))
    grouping = TaskGrouping.load(cell / "groups.yaml")
    assert grouping.num_groups == 3 and grouping.placement == "models"
    for i in range(3):
        assert TaskGrouping.load(cell / f"group-{i:02d}" / "groups.yaml") == grouping
    assert (cell / "elbow.png").exists() and (cell / "label_map.png").exists()
    assert "3 group models aggregated" in gmtl.stdout


def test_rerun_of_a_finished_cell_prints_its_saved_summary(sweeps):
    from mlflow.tracking import MlflowClient  # here, not at the top: a GPU box without MLflow still collects this file

    out, _, first = sweeps
    before = len(mlflow_runs(out))
    cell = next((out / "runs" / "demo").glob("gmtl-*"))
    saved = json.loads((cell / "aggregate.json").read_text())
    stamps = {p: p.stat().st_mtime_ns for p in [cell / "aggregate.json", cell / "metrics.json",
                                               *cell.glob("group-*/result.json")]}
    parent, _ = parent_and_children(out, "gmtl")
    history = len(MlflowClient(f"sqlite:///{out}/mlflow.db").get_metric_history(parent.run_id, "test/f1_macro"))
    proc = run_cli("mtlv.train", [*TINY, "arch=gmtl", "clustering=kmedoids_desc", "clustering.k=3"], out)
    assert proc.stdout.count("not retrained") == 4  # 3 group jobs and the cell
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert len(mlflow_runs(out)) == before
    assert len(MlflowClient(f"sqlite:///{out}/mlflow.db").get_metric_history(parent.run_id, "test/f1_macro")) == history
    cell_summary = proc.stdout[proc.stdout.index("3 group models aggregated"):]
    row = re.search(r"^test @ val-chosen threshold +([\d.]+) +([\d.]+) +([\d.]+)$", cell_summary, re.M)
    test = saved["test"]
    assert [float(v) for v in row.groups()] == [round(test[k], 4) for k in ("f1_macro", "f1_micro", "subset_accuracy")]
    assert f"threshold chosen on validation: {saved['threshold']}\n" in cell_summary
    assert f"MLflow parent run id: {parent.run_id}\n" in cell_summary
    assert f"mlflow ui --backend-store-uri sqlite:///{out}/mlflow.db" in cell_summary
    first_summary = first.stdout[first.stdout.index("3 group models aggregated"):].strip()
    assert cell_summary.strip().startswith(first_summary)


def test_aggregate_refuses_missing_groups_and_runs_standalone(sweeps, tmp_path):
    out = sweeps[0]
    cell = next((out / "runs" / "demo").glob("gmtl-*"))
    copy = tmp_path / cell.name
    shutil.copytree(cell, copy)
    (copy / "group-01" / "result.json").unlink()
    (copy / "parent_run.json").unlink()
    proc = run_cli("mtlv.aggregate", [str(copy)], out, check=False)
    assert proc.returncode == 2
    assert "group 1 (" in proc.stderr and "1 of 3 group jobs have not finished" in proc.stderr
    parent, _ = parent_and_children(out, "gmtl")
    proc = run_cli("mtlv.aggregate", [parent.run_id], out)
    assert "3 group models aggregated" in proc.stdout


def test_a_server_gone_before_aggregation_is_one_line_and_keeps_the_cell(sweeps, tmp_path):
    """The parent run's tracking server went away before the cell was aggregated: one `error:` line naming the
    server and the mtlv.track command, in seconds (MLflow's own retries took minutes), the aggregated files kept."""
    import socket
    import time

    out = sweeps[0]
    cell = next((out / "runs" / "demo").glob("gmtl-*"))
    copy = tmp_path / cell.name
    shutil.copytree(cell, copy)
    for name in ("metrics.json", "aggregate.json", "predictions_test.csv"):
        (copy / name).unlink()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens there once the block ends
    saved = json.loads((copy / "parent_run.json").read_text())
    (copy / "parent_run.json").write_text(json.dumps({**saved, "tracking_uri": uri}))
    start = time.monotonic()
    proc = run_cli("mtlv.aggregate", [str(copy)], out, check=False, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert time.monotonic() - start < 90  # interpreter start and bounded retries; MLflow's own: minutes
    assert "Traceback" not in proc.stderr and "Retrying" not in proc.stdout + proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert f"MLflow tracking server {uri} stopped answering while logging the cell's aggregated result" in line
    assert f"the cell's files are kept in {copy}" in line and f"python -m mtlv.track {copy} --tracking-uri {uri}" in line
    assert (copy / "metrics.json").is_file() and (copy / "predictions_test.csv").is_file()


def test_predict_round_trips_a_gmtl_set(sweeps, tmp_path):
    out = sweeps[0]
    parent, _ = parent_and_children(out, "gmtl")
    cell = next((out / "runs" / "demo").glob("gmtl-*"))
    test = Predictions.load(cell / "predictions_test.csv")
    from mtlv.data.sources.demo import load_demo

    corpus = load_demo()
    texts = {i: t for i, t in zip(corpus.ids, corpus.texts)}
    frame = pd.DataFrame({"doc": test.ids[:12], "text": [texts[i] for i in test.ids[:12]]})
    frame.to_csv(tmp_path / "new.csv", index=False)
    run_cli("mtlv.predict", [f"run={parent.run_id}", f"input={tmp_path / 'new.csv'}", "id_column=doc",
                             f"output={tmp_path / 'out.jsonl'}"], out)
    got = pd.read_json(tmp_path / "out.jsonl", lines=True, dtype={"id": str})
    assert got["id"].tolist() == test.ids[:12]
    probs = got[[f"prob:{n}" for n in test.label_names]].to_numpy()
    np.testing.assert_allclose(probs, test.probs[:12], atol=2e-4)  # same models, same texts
    threshold = float(parent["params.eval.chosen_threshold"])
    expected = [";".join(n for n, p in zip(test.label_names, row) if p >= threshold) for row in probs]
    assert got["labels"].fillna("").tolist() == expected


@pytest.mark.slow
def test_child_runs_are_named_after_their_group(tmp_path):
    """Each group job's MLflow run reads `<cell>/g<i>: <first labels>, +<more>`, not its parent's name;
    non-contiguous groups, the second listed out of order."""
    groups = ["arch=gmtl", "clustering=given", "clustering.groups=[[0,3,5],[6,1,2,4,7]]"]
    run_cli("mtlv.train", [*TINY, *groups, "dataset.limit=120", "eval.save_weights=false", "torch_threads=1"], tmp_path)
    runs = mlflow_runs(tmp_path)
    parent = runs[runs["tags.mtlv.role"] == "parent"]
    assert list(parent["tags.mlflow.runName"]) == ["gmtl-tiny-given"]
    children = runs[runs["tags.mlflow.parentRunId"] == parent.iloc[0].run_id]
    # demo labels: 0 Cardiomegaly, 1 Effusion, 2 opacity, 3 Atelectasis, 4 Calcified granuloma, 5 Nodule,
    # 6 Emphysema, 7 spine/degenerative
    assert dict(zip(children["tags.group_index"], children["tags.mlflow.runName"])) == {
        "0": "gmtl-tiny-given/g0: Cardiomegaly, Atelectasis, +1",
        "1": "gmtl-tiny-given/g1: Emphysema, Effusion, +3"}
