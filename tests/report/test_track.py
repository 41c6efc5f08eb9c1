"""`python -m mtlv.track`: a grid trained with logger=none, copied to another folder and recorded into a store
afterwards, reports exactly like the same grid trained with the logger on."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from helpers import TINY, run_cli

from mtlv import tracking

COMMON = [*TINY, "eval.save_weights=false", "torch_threads=1"]
# non-contiguous label groups of the 8 demo labels
GMTL = ["arch=gmtl", "clustering=given", "clustering.groups=[[0,3,5],[1,2,4,6,7]]"]


def train_grid(output_dir: Path, *extra: str) -> None:
    run_cli("mtlv.train", [*COMMON, "arch=mtl", *extra], output_dir)
    run_cli("mtlv.train", [*COMMON, *GMTL, *extra], output_dir)


def store_runs(uri: str) -> list:
    client = tracking.client(uri)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    """(folder the logger=none grid was copied to and tracked from, its store, the logger-on grid's store)."""
    gpu_node, here, trained = (tmp_path_factory.mktemp(n) for n in ("gpu-node", "here", "trained"))
    train_grid(gpu_node, "logger=none")
    assert not (gpu_node / "mlflow.db").exists()
    shutil.copytree(gpu_node / "runs", here / "runs")  # the runs folder copied back from the GPU machine
    shutil.rmtree(gpu_node)
    out = run_cli("mtlv.track", [str(here / "runs")], here).stdout
    train_grid(trained)
    return here, out, f"sqlite:///{here}/mlflow.db", f"sqlite:///{trained}/mlflow.db"


@pytest.mark.slow
def test_tracked_grid_reports_like_the_grid_trained_with_the_logger(grids):
    from mtlv.report.collect import collect

    here, out, tracked_uri, trained_uri = grids
    assert "4 run(s) created" in out and "3 runs created (parent + 2 jobs)" in out, out
    columns = ["dataset", "arch", "setting", "fold", "f1_macro", "f1_micro", "subset_accuracy", "val_f1_macro",
               "trainings", "trainable_params"]
    tracked, trained = (collect(uri).runs[columns].sort_values("arch").reset_index(drop=True)
                        for uri in (tracked_uri, trained_uri))
    assert list(trained.arch) == ["gmtl", "mtl"] and list(trained.setting) == ["given", ""]
    assert trained.f1_macro.gt(0).all()  # real scores, not an empty comparison
    assert trained.trainings.tolist() == [2, 1] and trained.trainable_params.gt(0).all()   # the cost is carried
    pd.testing.assert_frame_equal(tracked, trained, check_exact=True)

    def structure(uri):
        runs = store_runs(uri)
        parents = [r for r in runs if r.data.tags.get("mtlv.role") == "parent"]
        children = {p.info.run_id: sorted((r.data.tags["group_index"], r.info.run_name) for r in runs
                                          if r.data.tags.get("mlflow.parentRunId") == p.info.run_id) for p in parents}
        return [(p.data.tags["arch"], p.data.tags["cell"].split("-")[0], children[p.info.run_id]) for p in parents]

    # each child is named after its group: index and first labels (of 0 Cardiomegaly, 1 Effusion, 2 opacity,
    # 3 Atelectasis, 4 Calcified granuloma, 5 Nodule, 6 Emphysema, 7 spine/degenerative)
    assert structure(tracked_uri) == structure(trained_uri) == [
        ("gmtl", "gmtl", [("0", "gmtl-tiny-given/g0: Cardiomegaly, Atelectasis, +1"),
                          ("1", "gmtl-tiny-given/g1: Effusion, opacity, +3")])]
    # the folder tags name the folders where the results are now, not where they were trained
    for run in store_runs(tracked_uri):
        assert run.data.tags["mtlv.cell_dir"].startswith(str(here / "runs")), run.data.tags
        if run.data.tags["mtlv.role"] == "job":
            assert Path(run.data.tags["mtlv.job_dir"]).parent == Path(run.data.tags["mtlv.cell_dir"])
            assert run.info.status == "FINISHED" and run.info.end_time > run.info.start_time


@pytest.mark.slow
def test_tracking_the_same_folder_again_creates_no_run(grids):
    here, _, uri, _ = grids
    before = sorted(r.info.run_id for r in store_runs(uri))
    out = run_cli("mtlv.track", [str(here / "runs")], here).stdout
    assert "nothing new" in out.splitlines()[-1], out
    assert sorted(r.info.run_id for r in store_runs(uri)) == before


@pytest.mark.slow
def test_predictions_that_disagree_with_metrics_are_refused_before_anything_is_logged(grids, tmp_path):
    here, _, _, _ = grids
    runs = tmp_path / "runs"
    shutil.copytree(here / "runs", runs)
    for saved in runs.rglob("mlflow_run.json"):
        saved.unlink()  # as if never tracked
    for saved in runs.rglob("parent_run.json"):
        saved.unlink()
    test = next(runs.rglob("model/predictions_test.csv"))
    frame = pd.read_csv(test)
    truth = [c for c in frame.columns if c.startswith("true:")]
    frame[truth] = 1 - frame[truth]  # the test labels of another run
    frame.to_csv(test, index=False)
    proc = run_cli("mtlv.track", [str(runs)], tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "test F1-macro recomputed" in errors[0] and test.parent.name in errors[0]
    assert not (tmp_path / "mlflow.db").exists() or not store_runs(f"sqlite:///{tmp_path}/mlflow.db")


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_a_folder_without_cells_is_one_error_line(tmp_path, folder):
    target = tmp_path / folder
    if folder == "empty":
        (target / "demo" / "not-a-cell").mkdir(parents=True)
    proc = run_cli("mtlv.track", [str(target)], tmp_path, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and str(target) in lines[0], proc.stderr
    assert not (tmp_path / "mlflow.db").exists()
