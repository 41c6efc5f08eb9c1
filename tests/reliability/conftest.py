"""Fixtures for the reliability tests: the entry point run in-process (as a user runs it, minus the
interpreter start-up), small tables, the fault drill script as a module."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from helpers import load_script
from reliability._support import EntryPoint


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """Jobs here run with torch_threads=1 (process-wide): give other tests back their setting."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def entry(monkeypatch, capsys, tmp_path) -> EntryPoint:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    return EntryPoint(monkeypatch, capsys, tmp_path / "out")


@pytest.fixture
def table(tmp_path):
    """Write rows to a .csv/.jsonl file and return its path."""

    def write(rows: list[dict], name: str = "data.csv") -> Path:
        path = tmp_path / name
        frame = pd.DataFrame(rows)
        if path.suffix == ".jsonl":
            frame.to_json(path, orient="records", lines=True)
        else:
            frame.to_csv(path, index=False)
        return path

    return write


@pytest.fixture(scope="session")
def drill():
    """scripts/fault_drill.py as a module."""
    return load_script("fault_drill")


@pytest.fixture(scope="session")
def logged_run(tmp_path_factory):
    """One tiny job logged to MLflow, with an unreachable tracking server and a fallback store, that
    exports its weights. Returns (result, fallback URI, output folder, what mtlv.tracking logged)."""
    import logging
    import socket

    from reliability._support import FAST

    from mtlv.config import compose
    from mtlv.run.job import run_job

    out = tmp_path_factory.mktemp("logged")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fallback = f"sqlite:///{out}/fallback/mlflow.db"
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler, logger = Collect(level=logging.INFO), logging.getLogger("mtlv.tracking")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        result = run_job(compose([*FAST, f"paths.output_dir={out}", f"tracking.uri=http://127.0.0.1:{port}",
                                  f"tracking.fallback_uri={fallback}", "seed=7", "eval.save_weights=true"]))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return result, fallback, out, "\n".join(messages)
