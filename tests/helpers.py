"""Helpers for end-to-end tests (importable: tests/ is on pytest's pythonpath)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# A small, fast configuration shared by end-to-end tests: tiny random BERT, 200 demo documents.
TINY = ["model=tiny", "dataset.limit=200", "trainer.max_epochs=1", "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false", "eval.save_weights=true"]


def run_cli(module: str, args: list[str], output_dir: Path, timeout: int = 600, check: bool = True,
            stdin: str | None = None, umask: int = -1):
    """Run an MTLV entry point exactly as a user would, in its own process (`umask`: its umask; -1: ours)."""
    import subprocess
    import sys

    env = dict(os.environ, MTLV_OUTPUT_DIR=str(output_dir), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, input=stdin, umask=umask)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-5000:]}")
    return proc


def mlflow_runs(output_dir: Path, experiment: str = "demo"):
    """All runs of an experiment in the test's SQLite store, as a DataFrame (params, metrics, tags)."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{output_dir}/mlflow.db")
    return mlflow.search_runs(experiment_names=[experiment])
