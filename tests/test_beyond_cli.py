"""The commands of docs/grouping.md, through the real entry points: learned groupings, k=auto and a
loss weighting from config, with the grouping's choice and matrix in MLflow."""
from __future__ import annotations

import json
import re

import pytest
from helpers import TINY, mlflow_runs, run_cli


def test_cluster_shows_cooccurrence_with_auto_k(tmp_path):
    proc = run_cli("mtlv.cluster", ["clustering=cooccurrence", "clustering.k=auto", "clustering.algorithm=agglomerative",
                                    "dataset.limit=200", "split.folds=2"], tmp_path)
    k = int(re.search(r"^k = (\d+): (.+)$", proc.stdout, re.M).group(1))
    groups = re.findall(r"  group (\d+): (.+)", proc.stdout)
    assert len(groups) == k and 2 <= k <= 7
    folder = tmp_path / "clustering" / "demo-cooccurrence-kauto-agglomerative"
    assert (folder / "task_similarity.csv").read_text().startswith(",Cardiomegaly")
    assert json.loads((folder / "k_choice.json").read_text())["k"] == k
    assert (folder / "elbow.png").stat().st_size > 1000 and (folder / "label_map.png").exists()


@pytest.mark.slow
def test_gmhl_cooccurrence_auto_k_with_uncertainty(tmp_path):
    run_cli("mtlv.train", [*TINY, "arch=gmhl", "clustering=cooccurrence", "clustering.k=auto",
                           "weighting=uncertainty", "torch_threads=1"], tmp_path)
    run = mlflow_runs(tmp_path).iloc[0]
    k = int(run["params.clustering.chosen_k"])
    assert run["params.clustering.k"] == "auto" and run["params.clustering.k_reason"]
    assert sum(c.startswith("params.group.") and isinstance(run[c], str) for c in run.index) == k
    assert run["params.weighting._target_"] == "mtlv.weighting.Uncertainty"
    import mlflow

    names = {a.path for a in mlflow.MlflowClient().list_artifacts(run["run_id"])}
    assert {"k_choice.json", "task_similarity.csv", "elbow.png", "groups.yaml"} <= names


@pytest.mark.slow
def test_gmtl_affinity_agglomerative(tmp_path):
    run_cli("mtlv.train", [*TINY, "arch=gmtl", "clustering=affinity", "clustering.algorithm=agglomerative",
                           "clustering.k=4", "clustering.steps=5", "torch_threads=1"], tmp_path)
    cell = next(tmp_path.glob("runs/demo/gmtl-tiny-affinity-k4-agglomerative-*"))
    cost = json.loads((cell / "affinity_cost.json").read_text())
    assert cost["steps"] == 5 and cost["seconds"] > 0
    assert len(list(cell.glob("group-0*"))) == 4
    runs = mlflow_runs(tmp_path)
    parent = runs[runs["tags.mtlv.role"] == "parent"].iloc[0]
    assert parent["params.clustering.affinity_steps"] == "5" and parent["params.clustering.chosen_k"] == "4"
