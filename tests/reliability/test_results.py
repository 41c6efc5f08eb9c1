"""Wrong or stale results: label names MLflow rejects, data edited in place, callbacks changed,
texts copied across splits, a tokenizer replaced in place, repeated ids in prediction files, and
the run a kill leaves RUNNING in MLflow."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reliability._support import FAST, ROOT

from mtlv.config import compose
from mtlv.errors import DataError

ODD_LABELS = ["Effusion, Malignant", "Cardiomegaly?", "a(b)", "a_b_"]  # a(b) and a_b_ must not collide


def odd_rows(n: int = 80) -> list[dict]:
    """Every label learnable from one word, every label in every split; rows not in label order."""
    words = ["effusion", "heart", "bracket", "under"]
    rows = []
    for i in range(n):
        on = [j for j in range(4) if (i * 7 + j) % (j + 2) == 0]
        text = " ".join([words[j] for j in on] + ["report", f"number {i}"])
        rows.append({"text": text, "labels": ";".join(ODD_LABELS[j] for j in on)})
    return rows


def cli(output_dir: Path, *args: str) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, MTLV_OUTPUT_DIR=str(output_dir), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "mtlv.train", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory):
    """`python -m mtlv.train dataset=csv` on labels with `,` `?` `(`, logged to a fresh SQLite store,
    then the same command again."""
    tmp = tmp_path_factory.mktemp("odd")
    path = tmp / "odd.csv"
    pd.DataFrame(odd_rows()).to_csv(path, index=False)
    args = ["dataset=csv", f"dataset.path={path}", *FAST, "dataset.limit=null"]
    first = cli(tmp / "out", *args)
    second = cli(tmp / "out", *args)
    return tmp / "out", first, second


def test_odd_label_names_finish_and_land_in_mlflow(odd_run):
    out, first, _ = odd_run
    assert first.returncode == 0, first.stderr[-3000:]
    result = json.loads(next(out.glob("runs/csv/*/model/result.json")).read_text())
    assert result["labels"] == sorted(ODD_LABELS)

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{out}/mlflow.db")
    # the experiment of a CSV is named by its file and data (data.load.data_name), not `csv` for every file
    from mtlv.config import compose
    from mtlv.data.load import data_name

    experiment = data_name(compose(["dataset=csv", f"dataset.path={out.parent / 'odd.csv'}"]))
    assert experiment.startswith("odd-")
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    metrics = runs[0].data.metrics
    assert metrics["test/f1_macro"] == pytest.approx(result["test"]["f1_macro"], abs=1e-9)
    per_label = sorted(k[len("test/f1/"):] for k in metrics if k.startswith("test/f1/"))
    assert len(per_label) == 4  # four labels, four distinct keys: a(b) and a_b_ did not merge
    assert "a_b_" in per_label  # a valid name is kept as it is
    assert any(k.startswith("Cardiomegaly_") for k in per_label)
    assert any(k.startswith("Effusion_ Malignant") for k in per_label)
    # the real names stay with the run: label -> key, and the per-label F1 under the real name
    local = Path(runs[0].info.artifact_uri.replace("file://", ""))
    mapping = json.loads((local / "label_keys.json").read_text())
    assert sorted(mapping) == sorted(ODD_LABELS) and sorted(mapping.values()) == per_label
    report = json.loads((local / "metrics.json").read_text())
    assert metrics[f"test/f1/{mapping['Cardiomegaly?']}"] == pytest.approx(
        report["test"]["per_label"]["Cardiomegaly?"]["f1"])
    # the validation curves logged during training use the same keys
    history = client.get_metric_history(runs[0].info.run_id, f"val/f1/{mapping['a(b)']}")
    assert history


def test_odd_label_names_rerun_finds_the_finished_job(odd_run):
    _, _, second = odd_run
    assert second.returncode == 0, second.stderr[-3000:]
    assert "already finished" in second.stdout + second.stderr


def test_lightning_lines_are_printed_once_without_advertisement(odd_run):
    _, first, _ = odd_run
    text = first.stdout + first.stderr
    assert len(re.findall(r"GPU available: ", text)) == 1, text[:3000]
    assert "litlogger" not in text and "LitLogger" not in text
    assert "litmodels" not in text and "Tip:" not in text
    assert "srun" not in text  # Lightning's hint on every machine that has SLURM installed (CI does)


def test_no_checkpoint_callback_writes_no_checkpoint(entry, table, tmp_path):
    """Without MTLV's checkpoint callback (the smoke scale) Lightning must not add its own, which
    wrote a full checkpoint per job under the output folder."""
    code, _, err = entry(f"dataset.path={table(odd_rows(60))}", "dataset=csv", *FAST, "callbacks.model_checkpoint=null")
    assert code == 0, err[-3000:]
    assert list((tmp_path / "out").glob("runs/csv/*/model/result.json"))
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.ckpt")) == []


def test_batch_limits_never_make_the_final_scores_cover_a_subset(tmp_path, caplog):
    """Before: limit_predict_batches=2 scored 16 of the 40 test documents (2 batches of 8) and saved that as
    the test result, while result.json said 40 documents."""
    import logging

    from mtlv.evaluation.evaluate import evaluate
    from mtlv.evaluation.predictions import Predictions
    from mtlv.run.job import run_job

    cfg = compose([*FAST, "dataset.limit=200", "logger=none", "data.eval_batch_size=8", f"paths.output_dir={tmp_path}",
                   "trainer.limit_predict_batches=2", "trainer.limit_val_batches=1", "+trainer.limit_test_batches=1"])
    with caplog.at_level(logging.WARNING, logger="mtlv.run.outcome"):
        result = run_job(cfg)
    folder = Path(result["folder"])
    val, test = Predictions.load(folder / "predictions_val.csv"), Predictions.load(folder / "predictions_test.csv")
    assert (len(set(val.ids)), len(set(test.ids))) == (24, 40)  # 200 demo documents: 136 / 24 / 40
    assert not set(val.ids) & set(test.ids)
    assert result["test"]["f1_macro"] == evaluate(val, test, [list(range(8))])["test"]["f1_macro"]
    assert ("the final validation and test scores cover every document: trainer.limit_predict_batches=2, "
            "trainer.limit_val_batches=1, trainer.limit_test_batches=1 not applied to them; limit_val_batches "
            "still limits the validation during training") in caplog.messages


# ------------------------------------------------------------------ identity: data and callbacks
def test_data_edited_in_place_retrains_untouched_data_resumes(entry, table):
    path = table(odd_rows(80), "notes.csv")
    args = ["dataset=csv", f"dataset.path={path}", *FAST, "dataset.limit=null", "logger=none"]
    code, out, err = entry(*args)
    assert code == 0, err
    first = json.loads(next((entry.output_dir / "runs" / "csv").glob("*/model/result.json")).read_text())

    import os

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched, same content
    code, out, err = entry(*args)
    assert code == 0 and "already finished" in out + err

    pd.DataFrame(odd_rows(80)[:50]).to_csv(path, index=False)  # shrunk in place, same path
    code, out, err = entry(*args)
    assert code == 0, err
    assert "already finished" not in out + err
    results = [json.loads(p.read_text()) for p in (entry.output_dir / "runs" / "csv").glob("*/model/result.json")]
    assert len(results) == 2
    second = next(r for r in results if r["folder"] != first["folder"])
    counts = pd.read_csv(Path(second["folder"]) / "label_counts.csv", index_col=0)
    assert counts.loc["(documents)", "total"] == 50  # trained and tested on the edited file


def _keys(*overrides: str):
    from mtlv.run.spec import JobSpec

    spec = JobSpec.of(compose(["model=tiny", *overrides]))
    return spec.cell.key, spec.job_key


def test_callbacks_that_change_results_are_part_of_the_identity():
    base = _keys()
    for change in ("callbacks=early_stopping", "callbacks.model_checkpoint.monitor=val/loss",
                   "callbacks.model_checkpoint.mode=min"):
        other = _keys(change)
        assert other[0] != base[0] and other[1] != base[1], change
    for volatile in ("callbacks.progress_bar.refresh_rate=1", "callbacks.progress_bar=null",
                     "callbacks.progress_bar.style=lines", "callbacks.progress_bar.every_n_steps=5",
                     "trainer.enable_progress_bar=false",
                     # the bar jobs were keyed with before the line printer: they are not retrained
                     "callbacks.progress_bar={_target_:lightning.pytorch.callbacks.TQDMProgressBar,refresh_rate:10}",
                     "+callbacks.fault={_target_:mtlv.run.faults.KillAt,epoch:0,batch:1}"):
        assert _keys(volatile) == base, volatile


def test_new_csv_source_options_at_their_defaults_leave_the_job_key_as_it_was():
    from mtlv.config import identity

    csv = ["model=tiny", "dataset=csv", "dataset.path=/data/notes.csv"]
    source = identity(compose(csv))["dataset"]["source"]
    assert "label_case" not in source and "encoding" not in source and source["label_delimiter"] == ";"
    assert identity(compose([*csv, "dataset.source.label_case=merge"]))["dataset"]["source"]["label_case"] == "merge"
    assert identity(compose([*csv, "dataset.source.encoding=utf-16"]))["dataset"]["source"]["encoding"] == "utf-16"


def test_rerun_with_early_stopping_is_not_skipped(entry):
    args = [*FAST, "dataset.limit=60", "logger=none"]
    code, out, err = entry(*args)
    assert code == 0, err
    code, out, err = entry(*args, "callbacks=early_stopping")
    assert code == 0, err
    assert "already finished" not in out + err
    assert len(list((entry.output_dir / "runs" / "demo").glob("*/model/result.json"))) == 2


# ------------------------------------------------------------------ duplicate texts across splits
def _copies(corpus, split) -> int:
    train = [corpus.texts[i] for i in split.train]
    return sum(1 for i in split.test if corpus.texts[i] in train)


def test_duplicate_texts_are_counted_and_can_be_dropped(table, tmp_path, caplog):
    from mtlv.data.load import load_corpus
    from mtlv.data.splits import load_or_make_split

    rows = odd_rows(60)
    rows = rows + rows[:30]  # 30 texts twice: 90 rows, 60 distinct texts
    rng = np.random.default_rng(3)
    rows = [rows[i] for i in rng.permutation(len(rows))]
    path = table(rows, "dups.csv")
    base = ["dataset=csv", f"dataset.path={path}", f"paths.output_dir={tmp_path / 'o'}"]

    corpus = load_corpus(compose(base))
    assert len(corpus) == 90
    with caplog.at_level("WARNING"):
        split = load_or_make_split(corpus, tmp_path / "cache", seed=42)
    copies = _copies(corpus, split)
    assert copies > 0
    assert f"{copies} of {len(split.test)} test documents are copies of training documents" in caplog.text
    assert "dataset.source.drop_duplicates=true" in caplog.text

    caplog.clear()
    dropped = load_corpus(compose([*base, "dataset.source.drop_duplicates=true"]))
    assert len(dropped) == 60 and len(set(dropped.texts)) == 60
    assert "dropped 30 rows whose text repeats an earlier row" in caplog.text
    with caplog.at_level("WARNING"):
        split = load_or_make_split(dropped, tmp_path / "cache", seed=42)
    assert _copies(dropped, split) == 0 and "copies of training documents" not in caplog.text


# ------------------------------------------------------------------ token cache
def _write_tokenizer(folder: Path, words: list[str]) -> None:
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(folder)


def test_token_cache_sees_a_tokenizer_replaced_in_place(tmp_path):
    from transformers import AutoTokenizer

    from mtlv.data.tokenize import tokenize_cached

    folder, texts = tmp_path / "tok", ["alpha beta", "gamma alpha"]
    _write_tokenizer(folder, ["alpha", "beta", "gamma"])
    first = tokenize_cached(texts, AutoTokenizer.from_pretrained(folder), 16, tmp_path / "cache")
    assert first[0].tolist() == [2, 5, 6, 3]  # [CLS] alpha beta [SEP]

    _write_tokenizer(folder, ["gamma", "beta", "alpha"])  # same class, path and size; new ids
    second = tokenize_cached(texts, AutoTokenizer.from_pretrained(folder), 16, tmp_path / "cache")
    assert not second.from_cache
    assert second[0].tolist() == [2, 7, 6, 3] and second[1].tolist() == [2, 5, 7, 3]
    again = tokenize_cached(texts, AutoTokenizer.from_pretrained(folder), 16, tmp_path / "cache")
    assert again.from_cache and again[1].tolist() == [2, 5, 7, 3]


# ------------------------------------------------------------------ prediction files
def test_repeated_id_in_a_group_prediction_file_is_an_error_naming_it(tmp_path):
    from mtlv.run.aggregation import aggregate_cell
    from mtlv.evaluation.predictions import Predictions
    from mtlv.grouping.partition import TaskGrouping
    from mtlv.io import write_json, write_text

    labels = ["b", "a", "c"]
    TaskGrouping(tuple(labels), ((0, 2), (1,)), "models").save(tmp_path / "groups.yaml")
    rng = np.random.default_rng(0)
    ids = [f"d{i}" for i in rng.permutation(50)]
    for g, cols in enumerate((["b", "c"], ["a"])):
        job = tmp_path / f"group-{g:02d}"
        write_json(job / "result.json", {"run_name": "gmtl", "start": 0, "end": 1, "elapsed_s": 1})
        write_text(job / "config.yaml", "eval:\n  threshold: global\n")
        for part in ("val", "test"):
            rows = ids + (["d7"] if (g, part) == (1, "test") else [])  # one id twice: 51 rows
            y = rng.integers(0, 2, size=(len(rows), len(cols)))
            Predictions(rows, rng.random((len(rows), len(cols))), y, cols).save(job / f"predictions_{part}.csv")
    with pytest.raises(DataError) as err:
        aggregate_cell(tmp_path)
    message = str(err.value)
    assert str(tmp_path / "group-01" / "predictions_test.csv") in message and "'d7'" in message
    assert not (tmp_path / "aggregate.json").exists()


# ------------------------------------------------------------------ orphan MLflow runs
def test_run_left_running_by_a_kill_is_marked_killed_on_rerun(entry):
    from mlflow.tracking import MlflowClient

    args = [*FAST, "dataset.limit=60"]
    code, out, err = entry(*args)
    assert code == 0, err
    job = next((entry.output_dir / "runs" / "demo").glob("*/model"))
    client = MlflowClient(f"sqlite:///{entry.output_dir}/mlflow.db")
    exp = client.get_experiment_by_name("demo").experiment_id
    (orphan,) = client.search_runs([exp])
    # The state a kill leaves between MLflow creating the run and MTLV recording its id:
    # the run RUNNING, no mlflow_run.json, no result.json.
    client.update_run(orphan.info.run_id, status="RUNNING")
    (job / "mlflow_run.json").unlink()
    (job / "result.json").unlink()
    code, out, err = entry(*args)
    assert code == 0, err
    runs = {r.info.run_id: r.info.status for r in client.search_runs([exp])}
    assert runs.pop(orphan.info.run_id) == "KILLED"
    assert list(runs.values()) == ["FINISHED"]
