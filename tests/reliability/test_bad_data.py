"""Bad data files reach the user as one short `error: ...` line (what is wrong, where, and the fix) and exit
code 2, through the real entry point (`python -m mtlv.train`, run in-process; one test runs it as a real
subprocess); data that is odd but usable (undecodable bytes, empty texts, a label without positives) is
trained on, counted and said. The loaders' own unit tests live in tests/data/."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from reliability._support import FAST, ROOT, assert_short_error, demo_rows

from mtlv.config import compose
from mtlv.errors import user_error
from mtlv.layout import JobLayout


# ----------------------------------------------------------------------------- dataset files
def test_missing_dataset_path(entry, tmp_path):
    code, _, err = entry("dataset=csv", f"dataset.path={tmp_path / 'nope.csv'}", *FAST)
    assert_short_error(code, err, "nope.csv", "not found", "dataset.path=")


def test_missing_dataset_path_as_a_real_process(tmp_path):
    """The same through a real interpreter: exit status 2, the message on stderr, no traceback."""
    env = dict(os.environ, MTLV_OUTPUT_DIR=str(tmp_path), HF_HUB_OFFLINE="1")
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run([sys.executable, "-m", "mtlv.train", "dataset=csv", f"dataset.path={tmp_path}/nope.csv"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert_short_error(proc.returncode, proc.stderr, "nope.csv", "not found")


def test_full_traceback_on_request(entry, monkeypatch, tmp_path):
    """HYDRA_FULL_ERROR=1 keeps the whole exception for debugging."""
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(Exception) as info:
        entry("dataset=csv", f"dataset.path={tmp_path / 'nope.csv'}", *FAST)
    assert "nope.csv" in str(info.value) or "nope.csv" in str(user_error(info.value))


def test_corrupt_archive(entry, tmp_path):
    bad = tmp_path / "ohsumed-all-docs.tar.gz"
    bad.write_bytes(b"\x1f\x8b" + os.urandom(200))  # a gzip magic number, then garbage
    code, _, err = entry("dataset=ohsumed", f"dataset.path={bad}", *FAST)
    assert_short_error(code, err, str(bad), "corrupt", "download it again")


def test_archive_with_the_wrong_layout(entry, tmp_path):
    inner = tmp_path / "src" / "some-folder" / "notes"
    inner.mkdir(parents=True)
    (inner / "0000001").write_text("a document in no category folder")
    archive = tmp_path / "ohsumed.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "some-folder", arcname="some-folder")
    code, _, err = entry("dataset=ohsumed", f"dataset.path={archive}", *FAST)
    assert_short_error(code, err, "no OHSUMED category folders", "C01..C23", "expected")


def test_csv_without_the_label_column(entry, table):
    path = table([{"text": "hello", "tags": "a"}, {"text": "world", "tags": "b"}])
    code, _, err = entry("dataset=csv", f"dataset.path={path}", *FAST)
    assert_short_error(code, err, str(path), "['labels']", "['text', 'tags']", "dataset.source.label_column")


def test_jsonl_without_the_text_column(entry, table):
    path = table([{"body": "hello", "labels": ["a"]}], name="data.jsonl")
    code, _, err = entry("dataset=csv", f"dataset.path={path}", *FAST)
    assert_short_error(code, err, str(path), "['text']", "dataset.source.text_columns")


def test_non_utf8_bytes_are_replaced_counted_and_train(tmp_path, caplog):
    """Bad bytes become U+FFFD with a count in the log; tokenizing them works (no crash deep inside)."""
    from mtlv.data.load import load_corpus
    from mtlv.data.tokenize import tokenize
    from mtlv.models.encoder import load_tokenizer

    rows = [f"report {'alpha' if i % 2 else 'beta'} {i},{'a' if i % 2 else 'b'}".encode() for i in range(30)]
    rows[3] = b"caf\xe9 au lait \xff\xfe opacity,a"  # Latin-1 and stray bytes
    rows[7] = b"\x80\x81\x82,b"                      # nothing but invalid bytes
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"text,labels\n" + b"\n".join(rows) + b"\n")
    cfg = compose(["dataset=csv", f"dataset.path={path}", f"paths.output_dir={tmp_path}", *FAST])
    with caplog.at_level(logging.WARNING):
        corpus = load_corpus(cfg)
    # 3 bytes on line 5 (rows[3]; the header is line 1), 3 on line 9
    assert "6 byte(s) on 2 line(s) (5, 9) were not valid UTF-8" in caplog.text and str(path) in caplog.text
    assert corpus.notes["non_utf8"] == 6 and len(corpus) == 30
    assert "\ufffd" in corpus.texts[3] and corpus.texts[3].startswith("caf")
    tokens = tokenize(corpus.texts, load_tokenizer("packaged:minilm"), 64)
    assert len(tokens) == 30 and tokens.lengths[3] > 5
    assert tokens.lengths[7] >= 2  # only replacement characters: [CLS] [SEP], still a valid input


def test_rows_with_empty_text_are_dropped_and_counted(tmp_path, table, caplog):
    from mtlv.data.load import load_corpus

    rows = demo_rows(40) + [{"text": "", "labels": "a"}, {"text": "   ", "labels": "b"}, {"text": None, "labels": "a"}]
    path = table(rows)
    cfg = compose(["dataset=csv", f"dataset.path={path}", f"paths.output_dir={tmp_path}", *FAST])
    with caplog.at_level(logging.WARNING):
        corpus = load_corpus(cfg)
    assert len(corpus) == 40 and corpus.notes["dropped_empty"] == 3
    assert "dropped 3 rows with empty text" in caplog.text


def test_description_file_missing_labels(entry, table, tmp_path):
    rows = [{"text": f"report {i} alpha" * (i % 2 + 1), "labels": ["a;b", "b;c", "a;c"][i % 3]} for i in range(60)]
    path = table(rows)
    descriptions = tmp_path / "descriptions.yaml"
    descriptions.write_text("a: The first letter.\nb: The second letter.\n")
    code, _, err = entry("dataset=csv", f"dataset.path={path}", f"dataset.source.descriptions_path={descriptions}",
                         "arch=gmhl", "clustering=kmedoids_desc", "clustering.k=2", *FAST)
    assert_short_error(code, err, "1 of 3 have none: ['c']", "descriptions_path", "clustering=kmedoids_label")


# ----------------------------------------------------------------------------- labels without positives
def test_label_without_positives_warns_and_its_f1_is_undefined(tmp_path, table, caplog):
    """A label with no positive in train/validation: a warning naming it; its F1 is NaN, F1-macro
    averages the other labels only, and n_undefined counts it (see docs/reliability.md)."""
    from mtlv.run.job import run_job

    rows = [{"text": r["text"], "a": int("a" in r["labels"]), "b": int("b" in r["labels"]), "never": 0}
            for r in demo_rows(80)]
    path = table(rows)
    cfg = compose(["dataset=csv", f"dataset.path={path}", "dataset.source.label_columns=[a,b,never]",
                   f"paths.output_dir={tmp_path}", "logger=none", *FAST])
    with caplog.at_level(logging.WARNING):
        result = run_job(cfg)
    assert "labels with no positive example: never (train), never (val)" in caplog.text
    assert "undefined (NaN)" in caplog.text
    folder = next((tmp_path / "runs" / "csv").glob("*/model"))
    # strict JSON (jq, JavaScript): the undefined F1 is null in the file, NaN where MTLV reads it back
    written = {path.name: strict_json(path) for path in folder.rglob("*.json")}
    assert written["metrics.json"]["test"]["per_label"]["never"]["f1"] is None
    test = JobLayout(folder).metrics()["test"]
    assert np.isnan(test["per_label"]["never"]["f1"]) and test["n_undefined"] == 1
    defined = [test["per_label"][n]["f1"] for n in ("a", "b")]
    assert test["f1_macro"] == pytest.approx(np.mean(defined))
    assert result["test"]["n_undefined"] == 1


def strict_json(path):
    def refuse(constant: str):
        raise ValueError(f"{path}: {constant} is not JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def test_json_files_are_strict_and_read_back_nan(tmp_path, capsys):
    """NaN and infinities are written as null (Python's bare NaN breaks strict readers); the readers of metrics
    turn them back into NaN, and a saved result with an undefined F1-macro prints its summary again."""
    from mtlv.io import read_json, write_json
    from mtlv.run import record

    metrics = {part: {"f1_macro": float("nan"), "f1_micro": 0.5, "subset_accuracy": float("inf"), "n_undefined": 2,
                      "per_label": {"x": {"f1": np.float64("nan")}}} for part in ("test", "test_at_0.5", "val")}
    job = JobLayout(tmp_path)
    write_json(job.metrics_json, {**metrics, "threshold": [0.5, 0.25]})
    write_json(job.result_json, {"run_name": "r", "labels": ["x"], "group_index": None, "run_id": None,
                                 "folder": str(tmp_path), "elapsed_s": 1.0, **record_headlines(metrics)})
    assert "NaN" not in job.metrics_json.read_text() and "Infinity" not in job.metrics_json.read_text()
    assert strict_json(job.metrics_json)["test"]["f1_macro"] is None
    assert strict_json(job.metrics_json)["test"]["per_label"]["x"]["f1"] is None
    assert strict_json(job.result_json)["val"]["subset_accuracy"] is None
    back, result = job.metrics(), job.result()
    assert np.isnan(back["val"]["per_label"]["x"]["f1"]) and back["threshold"] == [0.5, 0.25]
    assert np.isnan(result["test"]["f1_macro"]) and result["test"]["f1_micro"] == 0.5
    assert result["run_id"] is None and result["group_index"] is None  # nulls that are not numbers stay None
    assert read_json(job.result_json)["test"]["f1_macro"] is None
    record.print_job(result, back, rerun=True)
    assert re.search(r"test @ val-chosen threshold +nan +0\.5000 +nan\n", capsys.readouterr().out)


def record_headlines(metrics: dict) -> dict:
    from mtlv.run.record import headline

    return {part: headline(values) for part, values in metrics.items()}


# ----------------------------------------------------------------------------- what the baseline's vocabulary needs
def _sparse_terms_table(table, n: int = 60):
    """Every text unique but for the word `pair`, in the even rows only."""
    rows = demo_rows(n)
    for i, row in enumerate(rows):
        row["text"] = f"{'pair ' if i % 2 == 0 else ''}w{i}x v{i}y"
    return table(rows)


def _training_rows(out) -> np.ndarray:
    (split,) = list((out / "cache" / "splits").glob("*.npz"))
    return np.load(split)["train"]


def test_baseline_min_df_above_the_training_documents(entry, table, tmp_path):
    """scikit-learn's "max_df corresponds to < documents than min_df" traceback: now one line naming the number of
    training documents."""
    path = _sparse_terms_table(table)
    code, _, err = entry("dataset=csv", f"dataset.path={path}", "baseline.min_df=1000", "logger=none",
                         module="mtlv.baseline")
    train = _training_rows(tmp_path / "out")
    assert_short_error(code, err, "baseline.min_df=1000", f"there are {len(train)}", "baseline.min_df=2")


def test_baseline_min_df_that_keeps_no_term(entry, table, tmp_path):
    """scikit-learn's "After pruning, no terms remain": one line naming how many training documents the most
    common term is in (here `pair`, counted from the saved split)."""
    path = _sparse_terms_table(table)
    code, _, err = entry("dataset=csv", f"dataset.path={path}", "baseline.min_df=30", "logger=none",
                         module="mtlv.baseline")
    train = _training_rows(tmp_path / "out")
    pairs = int((train % 2 == 0).sum())
    assert 30 < len(train) and pairs < 30  # min_df within the documents, above every term's count
    assert_short_error(code, err, "baseline.min_df=30: no term is in 30", f"of the {len(train)} training documents",
                       f"the most common is in {pairs}")
    code, out, err = entry("dataset=csv", f"dataset.path={path}", f"baseline.min_df={pairs}", "logger=none",
                           module="mtlv.baseline")
    assert code == 0, err
