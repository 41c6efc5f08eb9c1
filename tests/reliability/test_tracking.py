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
    from mtlv.run.prepare import prepare_cell
    from mtlv.io import read_json
    from mtlv.run.cell import cell_dir

    cfg = compose(["arch=stl", *FAST, f"paths.output_dir={tmp_path}", "seed=3"])
    prepare_cell(cfg)
    parent = read_json(cell_dir(cfg) / "parent_run.json")
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
