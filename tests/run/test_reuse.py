"""reuse_models: a model is trained once per (data, split, seed, training options, labels, heads) and
reused by every other cell that would train the same model, whatever grouping found its labels."""
import json
from pathlib import Path

import pandas as pd
import pytest
from helpers import TINY, mlflow_runs, run_cli, tiny_trainable_params

from mtlv.config import compose
from mtlv.grouping.partition import from_spec, one_per_label
from mtlv.run.reuse import launch_waves
from mtlv.run.spec import JobSpec


def job_model_keys(cfg, grouping, group_indices):
    return JobSpec.of(cfg).model_keys(grouping, group_indices)

FAST = [*TINY, "dataset.limit=100", "torch_threads=1"]
# Non-contiguous groups; labels 1 and 6 are singletons, which STL trains too.
GIVEN = ["arch=gmtl", "clustering=given", "clustering.groups=[[0,3],[1],[4,2],[5,7],[6]]"]


def cell(out: Path, arch: str) -> Path:
    [found] = (out / "runs" / "demo").glob(f"{arch}-*")
    return found


def results(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("group-*/result.json"))]


def trained(folder: Path) -> list[int]:
    """Groups whose job trained (wrote checkpoints)."""
    return sorted(int(p.parent.name[-2:]) for p in folder.glob("group-*/checkpoints"))


@pytest.fixture(scope="module")
def gmtl_then_stl(tmp_path_factory):
    out = tmp_path_factory.mktemp("reuse")
    run_cli("mtlv.train", [*FAST, *GIVEN], out)
    stl = run_cli("mtlv.train", [*FAST, "arch=stl"], out)
    return out, stl


def test_stl_trains_only_labels_that_were_not_gmtl_singletons(gmtl_then_stl):
    out, stl = gmtl_then_stl
    gmtl, stl_cell = cell(out, "gmtl"), cell(out, "stl")
    assert trained(gmtl) == [0, 1, 2, 3, 4]
    assert trained(stl_cell) == [0, 2, 3, 4, 5, 7]
    reused = {r["group_index"]: r.get("reused_from") for r in results(stl_cell)}
    assert reused == {0: None, 1: f"demo/{gmtl.name}/group-01", 2: None, 3: None, 4: None, 5: None,
                      6: f"demo/{gmtl.name}/group-04", 7: None}
    assert stl.stdout.count("reused the model trained in") == 2
    assert "group 1 (Effusion): reused the model trained in" in stl.stdout
    # The reused job's model is the GMTL job's: same predictions, a copy of its exported weights.
    assert (stl_cell / "group-06" / "predictions_test.csv").read_bytes() == \
        (gmtl / "group-04" / "predictions_test.csv").read_bytes()
    assert (stl_cell / "group-06" / "export" / "model.safetensors").read_bytes() == \
        (gmtl / "group-04" / "export" / "model.safetensors").read_bytes()
    # Logged like a trained job, with where its model came from.
    runs = mlflow_runs(out)
    child = runs[(runs["tags.arch"] == "stl") & (runs["tags.group_index"] == "6")]
    assert list(child["tags.mtlv.reused_from"]) == [f"demo/{gmtl.name}/group-04"]
    assert list(child["status"]) == ["FINISHED"]
    assert json.loads((stl_cell / "aggregate.json").read_text())["num_jobs"] == 8
    # the reused job's size is its source model's; the cell's is the sum over its 8 one-label models
    assert results(stl_cell)[6]["trainable_params"] == results(gmtl)[4]["trainable_params"] > 0
    assert json.loads((stl_cell / "aggregate.json").read_text())["trainable_params"] == sum(
        r["trainable_params"] for r in results(stl_cell)) == tiny_trainable_params([1] * 8)


def test_reused_job_equals_a_fresh_training(gmtl_then_stl, tmp_path):
    out, _ = gmtl_then_stl
    run_cli("mtlv.train", [*FAST, "arch=stl", "reuse_models=false", "logger=none", "hydra.mode=RUN",
                           "group_index=6"], tmp_path)
    fresh, reused = cell(tmp_path, "stl") / "group-06", cell(out, "stl") / "group-06"
    assert (fresh / "checkpoints").exists() and not (reused / "checkpoints").exists()
    for name in ("predictions_test.csv", "predictions_val.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(reused / name), pd.read_csv(fresh / name), check_exact=True)
    assert json.loads((reused / "metrics.json").read_text()) == json.loads((fresh / "metrics.json").read_text())
    assert "reused_from" not in json.loads((fresh / "result.json").read_text())


def test_reuse_models_false_retrains_a_reused_job(gmtl_then_stl):
    out, _ = gmtl_then_stl
    proc = run_cli("mtlv.train", [*FAST, "arch=stl", "reuse_models=false"], out)
    stl_cell = cell(out, "stl")
    assert trained(stl_cell) == list(range(8))
    assert all("reused_from" not in r for r in results(stl_cell))
    assert "reused the model" not in proc.stdout
    assert proc.stdout.count("not retrained") == 6  # the 6 jobs that trained their own model


SHARED = ["arch=gmtl", "clustering=given", "clustering.groups=[[0,3],[1,2],[4,5,6,7]],[[0,3],[1,2,4],[5,6,7]]"]


@pytest.mark.parametrize("reuse", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_a_group_shared_by_two_cells_of_one_sweep_trains_once(tmp_path, reuse):
    proc = run_cli("mtlv.train", [*FAST, *SHARED, "logger=none", f"reuse_models={str(reuse).lower()}"], tmp_path)
    cells = sorted((tmp_path / "runs" / "demo").glob("gmtl-*"))
    assert len(cells) == 2
    shared = {c.name: r.get("reused_from") for c in cells for r in results(c)
              if r["labels"] == ["Cardiomegaly", "Atelectasis"]}
    assert len(shared) == 2
    if reuse:  # one cell trained it, the other reused it (launched after it)
        [(trainer, none)] = [(n, v) for n, v in shared.items() if v is None]
        [(_, origin)] = [(n, v) for n, v in shared.items() if v is not None]
        assert origin == f"demo/{trainer}/group-00"
        assert sum(len(trained(c)) for c in cells) == 5
        assert "1 of 6 jobs train a model another job of this sweep trains first" in proc.stdout + proc.stderr
    else:
        assert list(shared.values()) == [None, None]
        assert sum(len(trained(c)) for c in cells) == 6


def test_model_key_ignores_how_the_labels_were_grouped():
    base = [*FAST, "logger=none"]
    stl = compose([*base, "arch=stl"])
    gmtl = compose([*base, *GIVEN])
    cooc = compose([*base, "arch=gmtl", "clustering=cooccurrence", "clustering.k=4"])
    from mtlv.data.load import load_corpus

    labels = load_corpus(stl).label_names
    singletons = one_per_label(labels, "models")
    given = from_spec([[0, 3], [1], [4, 2], [5, 7], [6]], labels, "models")
    other = from_spec([[1, 2], [0, 3], [4, 5, 6, 7]], labels, "models")
    swapped = from_spec([[3, 0], [1, 2], [4, 5, 6, 7]], labels, "models")
    # STL label 6 == the GMTL singleton (6), whatever the clustering options
    assert job_model_keys(stl, singletons, [6]) == job_model_keys(gmtl, given, [4])
    # group {0,3} of two clusterings: one model; label order is the model's column order
    assert job_model_keys(gmtl, given, [0]) == job_model_keys(cooc, other, [1])
    assert job_model_keys(gmtl, given, [0]) != job_model_keys(gmtl, swapped, [0])
    assert job_model_keys(stl, singletons, [1]) != job_model_keys(stl, singletons, [6])
    # what changes training changes the key
    for option in ("seed=7", "weighting=uncertainty", "model.module.dropout=0.2", "data.batch_size=8",
                   "trainer.max_epochs=2", "split.val_size=0.2"):
        changed = compose([*base, "arch=stl", option])
        assert job_model_keys(changed, singletons, [6]) != job_model_keys(stl, singletons, [6]), option
    # what does not, does not
    for option in ("eval.threshold=per_label", "reuse_models=false", "arch.inprocess=true"):
        same = compose([*base, "arch=stl", option])
        assert job_model_keys(same, singletons, [6]) == job_model_keys(stl, singletons, [6]), option
    # one model for all labels (MTL) == GMHL with one group; not a one-model-per-group job
    mtl = compose([*base, "arch=mtl"])
    gmhl = compose([*base, "arch=gmhl", "clustering=given", "clustering.groups=[[0,1,2,3,4,5,6,7]]"])
    assert job_model_keys(mtl, from_spec([list(range(8))], labels, "heads"), [None]) == \
        job_model_keys(gmhl, from_spec([list(range(8))], labels, "heads"), [None])
    assert job_model_keys(mtl, from_spec([list(range(8))], labels, "heads"), [None]) != \
        job_model_keys(gmtl, from_spec([list(range(8))], labels, "models"), [0])


def test_launch_waves_put_the_second_job_of_a_model_after_the_first():
    assert launch_waves([["a"], ["b"], ["a"], ["c"], ["b"], []]) == [[0, 1, 3, 5], [2, 4]]
    assert launch_waves([[], []]) == [[0, 1]]
    # an in-process cell trains several models: it waits only when one of them is trained by an earlier job
    assert launch_waves([["a", "b"], ["b", "c"], ["c"], ["c", "b"]]) == [[0, 2], [1, 3]]
    assert launch_waves([["a"], ["a"], ["a"]]) == [[0], [1, 2]]


def test_two_spellings_of_one_loss_share_one_model_key():
    """`weighting=sum|mean|static` is the same loss as `model.module.loss_reduction=sum|mean|weighted`
    (the GMHL default is the sum): one model key. Other weightings, or other weights, are other models."""
    base = [*FAST, "logger=none", "arch=gmhl", "clustering=given", "clustering.groups=[[0,5],[1,3,7],[2,4,6]]"]
    from mtlv.data.load import load_corpus

    heads = from_spec([[0, 5], [1, 3, 7], [2, 4, 6]], load_corpus(compose(base)).label_names, "heads")

    def key(*options: str) -> str:
        return job_model_keys(compose([*base, *options]), heads, [None])[0]

    assert key("weighting=sum") == key() == key("model.module.loss_reduction=sum")
    assert key("weighting=mean") == key("model.module.loss_reduction=mean") != key()
    assert key("weighting=static", "weighting.weights=[1,2,0.5]") == \
        key("model.module.loss_reduction=weighted", "model.module.head_weights=[1.0,2.0,0.5]")
    assert key("weighting=static", "weighting.weights=[1,2,0.5]") != key("weighting=static", "weighting.weights=[2,1,0.5]")
    assert len({key(), key("weighting=uncertainty"), key("weighting=pcgrad"), key("weighting=mean"),
                key("weighting=labelmean")}) == 5
    # the weighting wins over loss_reduction when both are given (as in the module)
    assert key("weighting=sum", "model.module.loss_reduction=mean") == key()


def test_gmhl_with_weighting_sum_reuses_the_default_gmhl_model(tmp_path):
    common = [*FAST, "logger=none", "arch=gmhl", "clustering=given", "clustering.groups=[[0,5],[1,3,7],[2,4,6]]"]
    run_cli("mtlv.train", common, tmp_path)
    [default] = (tmp_path / "runs" / "demo").glob("gmhl-*")
    run_cli("mtlv.train", ["-m", *common, "weighting=sum,mean"], tmp_path)
    found = {c.name: json.loads((c / "model" / "result.json").read_text())
             for c in (tmp_path / "runs" / "demo").glob("gmhl-*")}
    assert len(found) == 3
    # the sum cell reused the default cell's model; the mean cell trained its own
    reused = [r["reused_from"] for r in found.values() if "reused_from" in r]
    assert reused == [f"demo/{default.name}/model"]
    assert sum((tmp_path / "runs" / "demo" / name / "model" / "checkpoints").exists() for name in found) == 2
    [mean] = [r for name, r in found.items() if name != default.name and "reused_from" not in r]
    assert mean["model_key"] != found[default.name]["model_key"]
