"""Helpers for end-to-end tests (importable: tests/ is on pytest's pythonpath)."""
from __future__ import annotations

import csv
import os
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """scripts/<name>.py as a module (scripts are not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"mtlv_script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# A small, fast configuration shared by end-to-end tests: tiny random BERT, 200 demo documents.
TINY = ["model=tiny", "dataset.limit=200", "trainer.max_epochs=1", "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false", "eval.save_weights=true"]


def run_cli(module: str, args: list[str], output_dir: Path, timeout: int = 600, check: bool = True,
            stdin: str | None = None, umask: int = -1, env: dict[str, str] | None = None):
    """Run an MTLV entry point exactly as a user would, in its own process (`umask`: its umask, -1: ours;
    `env`: more variables)."""
    import subprocess
    import sys

    env = dict(os.environ, MTLV_OUTPUT_DIR=str(output_dir), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", **(env or {}))
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


# A small CSV a study has never seen (not the demo data): synthetic clinic notes, four labels whose words appear
# in their notes, fever often with cough; its own column names and label delimiter, as a user would pass them.
WORDS = {"fever": ["febrile", "pyrexia", "temperature"], "cough": ["coughing", "sputum", "wheeze"],
         "rash": ["erythema", "papules", "itchy"], "nausea": ["vomiting", "queasy", "emesis"]}
FILLER = "patient seen today history reviewed plan discussed follow up clinic stable vitals".split()


def write_notes(path: Path, n: int = 120, seed: int = 0) -> Path:
    rng = random.Random(seed)
    names = list(WORDS)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["note", "codes"])
        for _ in range(n):
            chosen = rng.sample(names, rng.choice([1, 1, 2]))
            if "fever" in chosen and "cough" not in chosen and rng.random() < 0.6:
                chosen.append("cough")
            words = [rng.choice(FILLER) for _ in range(10)] + [w for c in chosen for w in rng.sample(WORDS[c], 2)]
            rng.shuffle(words)
            writer.writerow([" ".join(words), "|".join(chosen)])
    return path


# A user's CSV with the docs' own label names (docs/study.md, "Your own study"), in the same columns as write_notes.
CLINIC_WORDS = {"Fever": ["febrile", "pyrexia"], "Cough": ["sputum", "wheeze"], "Rash": ["erythema", "papules"],
                "Nausea": ["vomiting", "emesis"], "Pain": ["ache", "tender"]}


def clinic_csv(path: Path, labels: list[str], n: int = 80) -> Path:
    """Notes whose labels are `labels` (the docs' own label names), as a user's CSV."""
    rng = random.Random(0)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["note", "codes"])
        for i in range(n):
            chosen = sorted({labels[i % len(labels)], rng.choice(labels)})
            words = ["patient", f"visit{i}", "today"] + [rng.choice(CLINIC_WORDS.get(c, [c.lower()])) for c in chosen]
            rng.shuffle(words)
            writer.writerow([" ".join(words), "|".join(chosen)])
    return path


# how a study reads it: its own column names and delimiter, as a user would pass them
CSV_OPTIONS = ["dataset=csv", "dataset.source.text_columns=[note]", "dataset.source.label_column=codes",
               "dataset.source.label_delimiter=|"]


# For a job that must keep an early checkpoint as its best (tests/early_best.py): the CLI overrides, and
# the environment that makes the callback importable in the job's process.
BEST_AT_FIRST_EPOCH = ["+callbacks.best_at_first_epoch._target_=early_best.BestAtFirstEpoch",
                       "callbacks.model_checkpoint.monitor=early_best/score"]
TESTS_ON_PATH = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))}
