"""MLflow tracking under faults: unreachable servers, fallback stores, concurrent writers, provenance."""
from __future__ import annotations

import socket

import pytest
from reliability._support import FAST, assert_short_error

from mtlv import tracking
from mtlv.config import compose
from mtlv.errors import TrackingError


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.mark.timeout(120)  # only a hang: MLflow's own client would retry an unreachable server for minutes
def test_unreachable_server_fails_fast_with_what_to_do(closed_port, monkeypatch):
    """Fast = one probe of the server, then the error; MLflow's retrying client is never asked."""
    import urllib.request

    uri = f"http://127.0.0.1:{closed_port}"
    probes, real_urlopen = [], urllib.request.urlopen
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, *a, **k: probes.append(url) or real_urlopen(url, *a, **k))
    monkeypatch.setattr(tracking, "client", lambda *a, **k: pytest.fail("the MLflow client was asked"))
    with pytest.raises(TrackingError) as info:
        tracking.resolve_uri(uri, None)
    assert probes == [f"{uri}/health"]
    message = str(info.value)
    for needle in (uri, "unreachable", "tracking.fallback_uri=sqlite:///", "logger=none"):
        assert needle in message


def test_unreachable_server_stops_the_run_before_training(entry, closed_port, tmp_path):
    code, _, err = entry(*FAST, f"tracking.uri=http://127.0.0.1:{closed_port}")
    assert_short_error(code, err, f"http://127.0.0.1:{closed_port} is unreachable", "tracking.fallback_uri")
    assert not list((tmp_path / "out").glob("runs/**/checkpoints"))
    assert not list((tmp_path / "out").glob("runs/**/result.json"))


def test_unreachable_server_stops_a_sweep_before_its_jobs(entry, closed_port, tmp_path):
    code, _, err = entry("arch=stl", *FAST, f"tracking.uri=http://127.0.0.1:{closed_port}")
    assert_short_error(code, err, "unreachable")
    assert not list((tmp_path / "out").glob("runs/**/group-*"))


def test_fallback_store_is_used_and_named_and_the_run_records_its_provenance(logged_run):
    """With tracking.fallback_uri the run goes on, says where it logs, and that run carries the
    seed, the library versions and the git commit (env.* params)."""
    import lightning
    import torch
    import transformers

    result, fallback, _, logged = logged_run
    assert f"logging to the fallback store {fallback} instead" in logged
    run = tracking.client(fallback).get_run(result["run_id"])
    params = run.data.params
    assert params["seed"] == "7"
    assert params["env.torch"] == torch.__version__ and params["env.lightning"] == lightning.__version__
    assert params["env.transformers"] == transformers.__version__
    assert params["env.git_commit"] and params["env.python"] and params["env.mtlv_version"]
    assert run.info.status == "FINISHED" and "test/f1_macro" in run.data.metrics


def test_parent_run_of_a_sweep_records_its_provenance_too(tmp_path):
    from mtlv.io import read_json

    cfg = compose(["arch=stl", *FAST, f"paths.output_dir={tmp_path}", "seed=3"])
    parent = read_json(prepare_cell_of(cfg) / "parent_run.json")
    params = tracking.client(parent["tracking_uri"]).get_run(parent["run_id"]).data.params
    assert params["seed"] == "3" and "env.git_commit" in params and "env.torch" in params


def test_locked_database_is_retried_other_errors_are_not():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert tracking.retry_locked(flaky)() == "ok" and len(calls) == 3

    def broken():
        calls.append(1)
        raise RuntimeError("no such table: runs")

    calls.clear()
    with pytest.raises(RuntimeError, match="no such table"):
        tracking.retry_locked(broken)()
    assert len(calls) == 1


def test_sqlite_uri_waits_for_locks():
    assert tracking.with_busy_timeout("sqlite:////x/mlflow.db") == "sqlite:////x/mlflow.db?timeout=120"
    assert tracking.with_busy_timeout("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_eight_processes_write_to_one_fresh_store_at_once(drill, tmp_path):
    """Direct stress test of mtlv.tracking: 8 processes create the store and write runs at the same
    moment (MLflow's table creation races without MTLV's lock: 'duplicate column name')."""
    checks = drill.drill_writers(tmp_path, writers=8, runs_each=1, steps=3)
    assert checks.passed, checks.results


@pytest.mark.slow
def test_parallel_sweep_on_the_default_sqlite_store(drill, tmp_path):
    """hydra/launcher=parallel hydra.launcher.n_jobs=4: no lock errors, one run per job, all complete."""
    checks = drill.drill_parallel_sweep(tmp_path, jobs=4)
    assert checks.passed, checks.results


def test_a_param_clash_keeps_the_result_and_is_one_warning(tmp_path, caplog):
    """A job's run that already has a param with another value (a rerun whose options changed under one job
    key) cannot be changed in MLflow: the other params, the metrics and the result are logged all the same, and
    the clash is one warning naming the param and both values."""
    import logging

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run = tracking.create_run(uri, tracking.experiment_id(uri, "clash"), "job")
    tracking.log_to_run(uri, run, params={"clustering.k": 2, "seed": 42})
    with caplog.at_level(logging.WARNING, logger="mtlv.tracking"):
        tracking.log_to_run(uri, run, params={"clustering.k": 3, "seed": 42, "split.n_test": 40},
                            metrics={"test/f1_macro": 0.5})
    data = tracking.client(uri).get_run(run).data
    assert data.params == {"clustering.k": "2", "seed": "42", "split.n_test": "40"}
    assert data.metrics == {"test/f1_macro": 0.5}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "clustering.k: logged '2', now '3'" in warnings[0], warnings


# ----------------------------------------------------------------------------- store paths and URIs
@pytest.mark.parametrize("name", ["plain", "out%41?x", "50% done", "a?b=c&d", "what#is", "ümlaut dir", "%2F"])
def test_sqlite_uri_names_the_very_file(tmp_path, name):
    """SQLAlchemy (which MLflow opens stores with) decodes %xx in a URL and ends its path at `?`."""
    from sqlalchemy.engine import make_url

    path = tmp_path / name / "mlflow.db"
    uri = tracking.sqlite_uri(path)
    assert make_url(tracking.with_busy_timeout(uri)).database == str(path)
    assert tracking.sqlite_path(tracking.with_busy_timeout(uri)) == path
    if name == "plain":
        assert uri == f"sqlite:///{path}"  # the spelling MLflow documents, where nothing needs encoding
    assert compose([f"paths.output_dir='{tmp_path / name}'"]).tracking.uri == uri  # the default store's URI


def test_a_job_in_an_output_folder_named_with_percent_and_question_mark(tmp_path, monkeypatch, capsys):
    """`out%41?x` was read as the store `outA` (the URI decoded %41; `?` began a query string), which SQLite could
    not open; MLflow retried that for ~2 minutes. The store, its artifacts and everything else now land in the
    folder itself, and nothing beside it."""
    import sqlite3

    from reliability._support import EntryPoint

    out = tmp_path / "out%41?x"
    code, stdout, err = EntryPoint(monkeypatch, capsys, out)(*FAST)
    assert code == 0, err[-3000:]
    assert [p.name for p in tmp_path.iterdir()] == ["out%41?x"]
    with sqlite3.connect(out / "mlflow.db") as db:  # read without MLflow
        runs = db.execute("SELECT run_uuid, status, artifact_uri FROM runs").fetchall()
    assert len(runs) == 1 and runs[0][1] == "FINISHED"
    run_id, _, artifact_uri = runs[0]
    assert (out / "mlartifacts" / run_id / "artifacts" / "metrics.json").is_file(), artifact_uri
    assert run_id in stdout and tracking.sqlite_uri(out / "mlflow.db") in stdout  # the MLflow UI command
    assert tracking.read_client(tracking.sqlite_uri(out / "mlflow.db")).get_run(run_id).info.status == "FINISHED"


@pytest.mark.parametrize("where", ["folder", "under-a-file"])
def test_a_store_that_cannot_be_opened_fails_at_once_with_its_cause(entry, tmp_path, monkeypatch, where):
    """SQLite says only "unable to open database file", and MLflow retried it for ~2 minutes before reporting it
    without the reason: now no retry (MLflow's sleep would fail this test) and the reason is named."""
    from mlflow.store.db import utils as mlflow_db

    def no_retry(seconds):
        raise AssertionError(f"MLflow retried the store after {seconds} s")

    monkeypatch.setattr(mlflow_db.time, "sleep", no_retry)
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("not a folder\n")
    store = tmp_path / ("a-folder" if where == "folder" else "a-file/mlflow.db")
    code, _, err = entry(*FAST, f"tracking.uri=sqlite:///{store}")
    cause = f"{store} is a folder, not a database file" if where == "folder" else f"{tmp_path}/a-file is a file, not a folder"
    assert_short_error(code, err, f"sqlite:///{store}", cause)
    assert not list((tmp_path / "out").glob("runs/**/checkpoints"))


# ----------------------------------------------------------------------------- tracking servers
def test_the_ui_hint_of_a_server_is_its_url():
    """`mlflow ui --backend-store-uri http://...` fails: a server serves its own UI."""
    assert tracking.ui_command("http://127.0.0.1:5123/") == "open http://127.0.0.1:5123 in a browser"
    assert tracking.ui_command("https://mlflow.example.org") == "open https://mlflow.example.org in a browser"
    assert tracking.ui_command("sqlite:////x/mlflow.db").startswith("mlflow ui --backend-store-uri sqlite:////x/")


def test_a_server_decides_where_artifacts_go_a_local_store_keeps_its_folder(tmp_path, monkeypatch):
    """A server's experiment got `file://<this job's output dir>/mlartifacts`, a path on the client."""
    created = {}

    class Recorder:  # what MTLV asks MLflow to create; the real server test is in test_tracking_server.py
        def get_experiment_by_name(self, name):
            return None

        def create_experiment(self, name, artifact_location=None):
            created[name] = artifact_location
            return "1"

    monkeypatch.setattr(tracking, "client", lambda uri: Recorder())
    tracking.experiment_id("http://127.0.0.1:5123", "served", str(tmp_path / "mlartifacts"))
    tracking.experiment_id("sqlite:////x/mlflow.db", "local", str(tmp_path / "mlartifacts"))
    assert created == {"served": None, "local": (tmp_path / "mlartifacts").as_uri()}


@pytest.mark.timeout(120)
def test_mlflow_requests_to_a_server_that_went_away_end_in_seconds_a_user_setting_wins(closed_port, monkeypatch):
    """MLflow's own bounds (7 retries, backoff factor 2, 120 s per request) kept a sweep's job in silent retries
    for 8 minutes after its server went away. MTLV's bounds apply where the environment sets none."""
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_TIMEOUT

    for name in tracking.HTTP_BOUNDS:
        monkeypatch.setenv(name, "0")
        monkeypatch.delenv(name)  # unset for the test, restored after it
    uri = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(Exception) as info:  # noqa: PT011 - MlflowException
        tracking.client(uri).search_experiments(max_results=1)
    assert tracking.server_gone(uri, info.value), info.value
    # the bounds the failed request ran under (3 retries, backoff 1: ~7 s; MLflow's defaults: minutes); no
    # wall-clock assertion here, the 120 s test timeout catches unbounded retries
    assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 3 and MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 30
    import os

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")  # the user's choice
    os.environ.pop("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    tracking.bound_http_requests()
    assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 300 and MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 3


@pytest.mark.timeout(120)
def test_a_server_gone_during_training_stops_the_logging_not_the_training(closed_port, tmp_path, caplog,
                                                                          monkeypatch):
    """Lightning's logger raised from log_metrics when MLflow gave up, which ended a job in its training: now
    one warning, then nothing more is sent (no second round of retries); other MLflow errors still raise."""
    import logging
    import time

    from mtlv.run.mlflow_logger import MLFlowLogger

    assert compose([]).logger._target_ == "mtlv.run.mlflow_logger.MLFlowLogger"
    for name in tracking.HTTP_BOUNDS:  # unset for the test (the logger sets MTLV's bounds), restored after it
        monkeypatch.setenv(name, "0")
        monkeypatch.delenv(name)
    uri = f"http://127.0.0.1:{closed_port}"
    logger = MLFlowLogger(experiment_name="gone", tracking_uri=uri)
    with caplog.at_level(logging.WARNING, logger="mtlv.run.mlflow_logger"):
        logger.log_hyperparams({"seed": 1})
        start = time.monotonic()
        logger.log_metrics({"train/loss": 0.5}, step=1)
        logger.finalize("success")
        assert time.monotonic() - start < 1
    warnings = [r.getMessage() for r in caplog.records if r.name == "mtlv.run.mlflow_logger"]
    assert warnings == [f"MLflow tracking server {uri} stopped answering during training; the job trains on "
                        "without logging to it and keeps its files"]
    local = MLFlowLogger(experiment_name="x", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", run_id="0" * 32)
    with pytest.raises(Exception, match="not found|No run"):  # noqa: PT011 - MlflowException
        local.log_metrics({"train/loss": 0.5})


# ----------------------------------------------------------------------------- two live sweeps on one cell
def prepare_cell_of(cfg):
    """What the sweeper does for an STL/GMTL cell before its jobs start; the cell's folder."""
    from mtlv.data.load import load_corpus
    from mtlv.run.prepare import prepare_cell
    from mtlv.run.spec import JobSpec

    spec = JobSpec.resolve(cfg)
    prepare_cell(spec, load_corpus(cfg))
    return spec.cell.folder


_HOLD_CELL = """
import sys
from mtlv.config import compose
from mtlv.data.load import load_corpus
from mtlv.run.prepare import prepare_cell
from mtlv.run.spec import JobSpec
cfg = compose(sys.argv[1:])
prepare_cell(JobSpec.resolve(cfg), load_corpus(cfg))
print("ready", flush=True)
sys.stdin.readline()
"""


@pytest.mark.timeout(300)
def test_a_live_sweeps_parent_run_is_not_marked_killed_by_a_second_one(tmp_path):
    """Two live studies on one output folder: the second marked the first's parent run KILLED as "left RUNNING
    by an interrupted earlier attempt" while the first was running. Only a process whose cell lock the OS has
    released (it is gone) is presumed dead."""
    import subprocess
    import sys

    from mtlv.io import read_json
    from mtlv.layout import CellLayout
    from mtlv.run.lock import release_parent
    from mtlv.run.spec import JobSpec

    def cell_dir(cfg):
        return JobSpec.of(cfg).cell.folder

    overrides = ["arch=stl", *FAST, f"paths.output_dir={tmp_path}"]
    first = subprocess.Popen([sys.executable, "-c", _HOLD_CELL, *overrides], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "ready", first.stderr.read()[-3000:]
        cfg = compose([*overrides, "resume=false"])  # a second parent run for the same cell, now
        cell = CellLayout(cell_dir(cfg))
        first_run = read_json(cell.parent_run)["run_id"]
        uri = read_json(cell.parent_run)["tracking_uri"]
        prepare_cell_of(cfg)
        second_run = read_json(cell.parent_run)["run_id"]
        assert second_run != first_run
        assert tracking.client(uri).get_run(first_run).info.status == "RUNNING"  # alive: left alone
        first.stdin.close()
        assert first.wait(timeout=60) == 0
        prepare_cell_of(cfg)  # the first process is gone: its run was left RUNNING by a dead process
        assert tracking.client(uri).get_run(first_run).info.status == "KILLED"
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        release_parent(CellLayout(cell_dir(compose(overrides))))
