"""Folders and stores that are missing, incomplete or of the wrong kind: a model folder or Hub id that cannot
be loaded, an MLflow store that does not exist (nothing is created there) or has no runs, and a cell folder
that `mtlv.aggregate` has nothing to do for. Each is one `error:` line (exit 2) or a plain answer."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from reliability._support import FAST, ROOT, assert_short_error


# ----------------------------------------------------------------------------- model folders and Hub ids
def test_unknown_hub_id_offline_says_so_and_how_to_use_a_folder(entry):
    code, _, err = entry("model.name_or_path=some-org/no-such-model", *FAST[1:])
    assert_short_error(code, err, "some-org/no-such-model", "HF_HUB_OFFLINE=1", "model.name_or_path=/path/to/model",
                       "huggingface-cli download")


def test_incomplete_local_model_folder(entry, tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "README.md").write_text("weights go here")
    code, _, err = entry(f"model.name_or_path={folder}", *FAST[1:])
    assert_short_error(code, err, str(folder), "not a complete Hugging Face")


def test_unknown_hub_id_fails_fast_without_hf_hub_offline(tmp_path):
    """Without HF_HUB_OFFLINE and without a network, transformers retries for ~25 s per file; MTLV
    sees the Hub is unreachable and asks for local files only (with a network: a quick 404). Checked by
    what MTLV asks transformers for, not by a clock (a loaded machine makes any time limit flaky)."""
    code = ("from mtlv.errors import ModelLoadError\nfrom mtlv.models import encoder\n"
            "asked = []\nreal = encoder.AutoConfig.from_pretrained\n"
            "def spy(*args, **kwargs):\n    asked.append(kwargs.get('local_files_only'))\n"
            "    return real(*args, **kwargs)\n"
            "encoder.AutoConfig.from_pretrained = spy\n"
            "try:\n    encoder.model_max_length('some-org/no-such-model')\nexcept ModelLoadError as err:\n"
            "    print(asked, encoder.hub_reachable()); print(err)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    asked, message = proc.stdout.split("\n", 1)
    # one request; local files only (no retries) unless the Hub answers, which gives a quick 404
    assert asked in ("[True] False", "[None] True"), proc.stdout
    assert "some-org/no-such-model" in message and "model.name_or_path=/path/to/model" in message


# ----------------------------------------------------------------------------- commands that read a store
def _tree(folder) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("target", ["missing-folder", "empty-folder", "uri-of-empty-folder", "folder-as-uri"])
def test_report_on_a_store_that_does_not_exist_creates_nothing(entry, tmp_path, target):
    """A typo in the path made a new, empty MLflow database there and an empty report (exit 0), which read as
    "no runs yet": now one error line naming the path and the fix, and nothing is created."""
    (tmp_path / "empty").mkdir()
    before = _tree(tmp_path)
    args = {"missing-folder": [f"paths.output_dir={tmp_path}/typo"],
            "empty-folder": [f"paths.output_dir={tmp_path}/empty"],
            "uri-of-empty-folder": [f"tracking_uri=sqlite:///{tmp_path}/empty/mlflow.db", f"out={tmp_path}/report"],
            "folder-as-uri": [f"tracking_uri={tmp_path}/empty", f"out={tmp_path}/report"]}[target]
    code, out, err = entry(*args, module="mtlv.report.__main__")
    where = f"{tmp_path}/empty" if target == "folder-as-uri" else f"{tmp_path}/{'typo' if 'missing' in target else 'empty'}/mlflow.db"
    assert_short_error(code, err, f"there is no MLflow store at {where} (nothing was created)", "tracking_uri=sqlite:///",
                       "paths.output_dir=")
    assert _tree(tmp_path) == before


def test_report_on_a_store_without_runs_says_so_and_leaves_the_store_alone(entry, tmp_path):
    from mtlv import tracking

    uri = tracking.sqlite_uri(tmp_path / "store" / "mlflow.db")
    tracking.check_store(uri)  # a new store, as a training command makes it (tables, no runs)
    before = _tree(tmp_path / "store")
    code, out, err = entry(f"tracking_uri={uri}", f"out={tmp_path}/report", module="mtlv.report.__main__")
    assert code == 0, err
    assert "No finished runs in this store yet" in (tmp_path / "report" / "report.md").read_text()
    assert _tree(tmp_path / "store") == before


def test_predict_and_aggregate_by_run_id_in_a_store_that_does_not_exist(entry, tmp_path):
    store = tmp_path / "nowhere" / "mlflow.db"
    code, _, err = entry("run=0123456789abcdef", "input=-", f"tracking_uri=sqlite:///{store}", module="mtlv.predict")
    assert_short_error(code, err, "run='0123456789abcdef' is neither a folder nor a run id",
                       f"there is no MLflow store at {store}")
    from mtlv.aggregate import main as aggregate

    with pytest.raises(SystemExit) as info:
        aggregate(["0123456789abcdef", "--tracking-uri", f"sqlite:///{store}"])
    assert info.value.code == 2 and f"there is no MLflow store at {store}" in entry.capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


# ----------------------------------------------------------------------------- mtlv.aggregate on what needs none
def test_aggregate_on_a_finished_mtl_cell_says_it_needs_none_and_where_its_result_is(logged_run, capsys):
    """It said "1 of 1 group jobs have not finished ... rerun the sweep" (exit 2) about a finished MTL job."""
    from mtlv.aggregate import main as aggregate

    result = logged_run[0]
    job = Path(result["folder"])
    for target in (job.parent, job):
        capsys.readouterr()
        assert aggregate([str(target)]) == 0
        out = capsys.readouterr().out
        assert "nothing to aggregate" in out and f"Its result is in {job} (result.json, metrics.json)" in out
        assert f"{result['test']['f1_macro']:9.4f}" in out and "have not finished" not in out
    assert not (job.parent / "aggregate.json").exists()


def test_aggregate_on_an_unfinished_mtl_cell_or_a_group_job(tmp_path, capsys):
    from mtlv.aggregate import main as aggregate
    from mtlv.grouping.partition import TaskGrouping

    heads = tmp_path / "mtl-cell"
    TaskGrouping(("a", "b", "c"), ((0, 1, 2),), "heads").save(heads / "groups.yaml")
    (heads / "model").mkdir()
    with pytest.raises(SystemExit) as info:
        aggregate([str(heads)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and f"{heads / 'model'} has no result.json" in err and "rerun the same training" in err
    models = tmp_path / "gmtl-cell"
    for folder in (models, models / "group-01"):
        TaskGrouping(("a", "b", "c"), ((0, 2), (1,)), "models").save(folder / "groups.yaml")
    with pytest.raises(SystemExit) as info:
        aggregate([str(models / "group-01")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and f"one group job of the STL/GMTL cell {models}" in err
    assert f"python -m mtlv.aggregate {models}" in err
