"""MTLV against a real `mlflow server` on loopback: artifacts go through the server, the UI hint is the
server's URL, and a server that goes away during a job costs seconds and one line, not the job's files.

Each server is a child process in its own session on 127.0.0.1 (a free port), killed when its test ends.
Starting one takes 10-60 s on a busy machine, so these are slow tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from reliability._support import FAST, EntryPoint

from mtlv.io import read_json

pytestmark = pytest.mark.slow


@dataclass
class Server:
    uri: str
    artifacts: Path
    process: subprocess.Popen
    log: Path

    def kill(self) -> None:
        """The server and its workers, at once (a crash, not a shutdown)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(folder: Path) -> Server:
    folder.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), folder / "server.log"
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--backend-store-uri", f"sqlite:///{folder}/server.db", "--serve-artifacts",
               "--artifacts-destination", str(folder / "artifacts")]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", folder / "artifacts", process, log)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mlflow server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.uri}/health", timeout=5) as answer:  # noqa: S310 - loopback
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(1)
    server.kill()
    pytest.fail(f"mlflow server did not answer in 240 s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def server(tmp_path):
    started = start_server(tmp_path / "server")
    try:
        yield started
    finally:
        started.kill()


@pytest.mark.timeout(900)
def test_artifacts_go_through_the_server_and_each_job_keeps_its_folder(server, tmp_path, monkeypatch, capsys):
    """The experiment was created with `file://<first job's output dir>/mlartifacts`, a path on the client: the
    server's artifact store stayed empty, and a second job with another output folder wrote into the first's.
    Now the server decides (mlflow-artifacts:), and a run's artifacts download through it."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=server.uri)
    runs = []
    for name in ("one", "two"):
        out = tmp_path / name
        code, stdout, err = EntryPoint(monkeypatch, capsys, out)(*FAST, f"tracking.uri={server.uri}")
        assert code == 0, err[-3000:]
        (result,) = [read_json(p) for p in out.glob("runs/**/result.json")]
        runs.append((out, result))
        # the UI hint: the server's own URL (`mlflow ui --backend-store-uri http://...` fails)
        assert f"MLflow UI: open {server.uri} in a browser" in stdout
        assert "--backend-store-uri http" not in stdout
    experiment = client.get_experiment(client.get_run(runs[0][1]["run_id"]).info.experiment_id)
    assert experiment.artifact_location.startswith("mlflow-artifacts:"), experiment.artifact_location
    for out, result in runs:
        run_id = result["run_id"]
        assert client.get_run(run_id).info.artifact_uri.startswith("mlflow-artifacts:")
        downloaded = Path(client.download_artifacts(run_id, "metrics.json", str(tmp_path / "download" / run_id)))
        assert downloaded.read_bytes() == (Path(result["folder"]) / "metrics.json").read_bytes()
        # stored in the server's artifact destination, under this run's id ...
        assert [p.parent.parent.name for p in server.artifacts.rglob("metrics.json") if run_id in p.parts] == [run_id]
        # ... and in no job's output folder
        assert not (out / "mlartifacts").exists()
        assert not [p for p in out.rglob("*") if run_id in p.parts]


@pytest.mark.timeout(600)
def test_a_server_gone_during_training_costs_seconds_and_one_line_and_keeps_the_job(server, tmp_path, monkeypatch,
                                                                                   capsys):
    """The server is killed as the job starts training. MLflow's own client retried for minutes (8 measured,
    silently), and Lightning's logger then ended the job. Now: one warning, the job trains on and saves its
    result, and one `error:` line names the server and how to record the kept files with mtlv.track."""
    from mtlv import tracking
    from mtlv.run import job as job_module

    for name in tracking.HTTP_BOUNDS:  # MTLV's bounds, not a setting of this machine
        monkeypatch.setenv(name, "0")
        monkeypatch.delenv(name)
    killed = []
    real_fit = job_module.fit

    def kill_then_fit(*args, **kwargs):
        server.kill()
        killed.append(time.monotonic())
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(job_module, "fit", kill_then_fit)
    out = tmp_path / "out"
    code, stdout, err = EntryPoint(monkeypatch, capsys, out)(*FAST, f"tracking.uri={server.uri}")
    after_kill = time.monotonic() - killed[0]
    assert code == 2, err[-3000:]
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and len(err[err.index("error:"):].strip().splitlines()) == 1, err
    (job_dir,) = [p.parent for p in out.glob("runs/**/result.json")]  # finished: its result is kept
    cell = job_dir.parent
    for needle in (f"MLflow tracking server {server.uri} stopped answering", str(job_dir),
                   f"python -m mtlv.track {cell} --tracking-uri {server.uri}"):
        assert needle in errors[0], errors[0]
    assert (job_dir / "predictions_test.csv").is_file() and (job_dir / "metrics.json").is_file()
    assert not (job_dir / "mlflow_run.json").exists()  # its run is incomplete: mtlv.track logs the job anew
    assert "run_id" not in read_json(job_dir / "result.json")
    logged = stdout + err
    assert "Retrying" not in logged, logged  # urllib3's line per retry
    assert logged.count(f"MLflow tracking server {server.uri} stopped answering during training") == 1, logged
    # training and the bounded retries (~7 s per call: 3 retries, backoff factor 1), not MLflow's ~4 minutes
    assert after_kill < 120, after_kill
    # the kept files are what mtlv.track needs (here into a local store: the server is gone)
    from mtlv.run.importer import track

    assert track(cell, tracking_uri=f"sqlite:///{tmp_path}/later.db") == 1
