"""Helpers for end-to-end tests (importable: tests/ is on pytest's pythonpath)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# A small, fast configuration shared by end-to-end tests: tiny random BERT, 200 demo documents.
TINY = ["model=tiny", "dataset.limit=200", "trainer.max_epochs=1", "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false", "eval.save_weights=true"]


def run_cli(module: str, args: list[str], output_dir: Path, timeout: int = 600, check: bool = True,
            stdin: str | None = None):
    """Run an MTLV entry point exactly as a user would, in its own process."""
    import subprocess
    import sys

    env = dict(os.environ, MTLV_OUTPUT_DIR=str(output_dir), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
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


def tiny_trainable_params(labels_per_model: list[int]) -> int:
    """Trainable parameters of `model=tiny` models (one per entry: the labels it predicts, linear heads),
    counted by hand from BERT's layout: embeddings (words, positions, token types, LayerNorm) and per layer
    Q, K, V, attention output, LayerNorm, intermediate, output, LayerNorm; the pooler is frozen (cls
    pooling) and does not count; a linear head has hidden x labels weights + labels biases."""
    import json

    from mtlv.models.encoder import packaged_minilm_path

    vocab = json.loads((Path(packaged_minilm_path()) / "config.json").read_text())
    hidden, layers, inter, positions = 32, 2, 64, 128                     # conf/model/tiny.yaml
    embeddings = (vocab["vocab_size"] + positions + vocab["type_vocab_size"]) * hidden + 2 * hidden
    layer = 4 * (hidden * hidden + hidden) + 2 * hidden + (hidden * inter + inter) + (inter * hidden + hidden) \
        + 2 * hidden
    return sum(embeddings + layers * layer + hidden * n + n for n in labels_per_model)
