"""Helpers for end-to-end tests (importable: tests/ is on pytest's pythonpath)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# A small, fast configuration shared by end-to-end tests: tiny random BERT, 200 demo documents.
TINY = ["model=tiny", "dataset.limit=200", "trainer.max_epochs=1", "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false", "eval.save_weights=true"]


def run_cli(module: str, args: list[str], output_dir: Path, timeout: int = 600, check: bool = True,
            stdin: str | None = None, env: dict[str, str] | None = None):
    """Run an MTLV entry point exactly as a user would, in its own process (`env`: more variables)."""
    import subprocess
    import sys

    env = dict(os.environ, MTLV_OUTPUT_DIR=str(output_dir), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", **(env or {}))
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, input=stdin)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-5000:]}")
    return proc


def mlflow_runs(output_dir: Path, experiment: str = "demo"):
    """All runs of an experiment in the test's SQLite store, as a DataFrame (params, metrics, tags)."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{output_dir}/mlflow.db")
    return mlflow.search_runs(experiment_names=[experiment])


# For a job that must keep an early checkpoint as its best (tests/early_best.py): the CLI overrides, and
# the environment that makes the callback importable in the job's process.
BEST_AT_FIRST_EPOCH = ["+callbacks.best_at_first_epoch._target_=early_best.BestAtFirstEpoch",
                       "callbacks.model_checkpoint.monitor=early_best/score"]
TESTS_ON_PATH = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))}
