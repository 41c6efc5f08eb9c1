"""`arch.inprocess=true` trains the group models of a GMTL/STL cell inside one job, and gives the same
predictions and metrics as the one-job-per-group sweep (non-contiguous groups, 2 epochs)."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers import run_cli

pytestmark = pytest.mark.slow  # two sweeps of 3 group jobs each (~90 s on the shared 2-core machine)

GROUPS = "clustering.groups=[[0,5],[1,3,7],[2,4,6]]"
ARGS = ["model=tiny", "dataset.limit=120", "trainer.max_epochs=2", "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false", "logger=none", "eval.save_weights=false", "torch_threads=1",
        "arch=gmtl", "clustering=given", GROUPS]


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    sweep, inproc = tmp_path_factory.mktemp("sweep"), tmp_path_factory.mktemp("inprocess")
    run_cli("mtlv.train", ARGS, sweep)
    run_cli("mtlv.train", [*ARGS, "arch.inprocess=true"], inproc)
    return [next((out / "runs" / "demo").glob("gmtl-*")) for out in (sweep, inproc)]


def launched_jobs(cell) -> int:
    out = cell.parents[2]
    return len([d for d in (out / "hydra").glob("train-multirun/*/*") if d.is_dir()])


def test_inprocess_runs_one_launcher_job_for_the_cell(both):
    sweep, inproc = both
    assert launched_jobs(sweep) == 3 and launched_jobs(inproc) == 1
    assert sweep.name == inproc.name  # arch.inprocess is not part of the cell's identity (resume works across)


@pytest.mark.parametrize("name", ["group-00/predictions_test.csv", "group-01/predictions_val.csv",
                                  "group-02/predictions_test.csv", "predictions_test.csv", "predictions_val.csv"])
def test_inprocess_predictions_equal_the_sweep(both, name):
    sweep, inproc = (pd.read_csv(cell / name, dtype={"id": str}) for cell in both)
    assert len(sweep) > 0
    pd.testing.assert_frame_equal(sweep, inproc, check_exact=False, atol=1e-6)


def test_inprocess_metrics_equal_the_sweep(both):
    for part in ("group-01/metrics.json", "metrics.json"):
        sweep, inproc = (json.loads((cell / part).read_text()) for cell in both)
        assert sweep["threshold"] == inproc["threshold"]
        for key in ("f1_macro", "f1_micro", "subset_accuracy"):
            assert sweep["test"][key] == pytest.approx(inproc["test"][key], abs=1e-12)
    groups = json.loads((both[1] / "group-01" / "result.json").read_text())["labels"]
    assert len(groups) == 3  # labels 1, 3, 7
