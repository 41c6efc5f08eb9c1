"""User tables (dataset "csv"): CSV/TSV/JSONL, delimited or 0/1 labels, splits, descriptions, errors."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtlv.data.sources.table import load_label_descriptions, load_table
from mtlv.errors import ConfigError, DataError


def _csv(path: Path, rows: list[dict], sep: str = ",") -> Path:
    pd.DataFrame(rows).to_csv(path, index=False, sep=sep)
    return path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [
    {"id": "007", "title": "Chest film", "body": "Enlarged heart.", "labels": "cardio;effusion", "split": "train"},
    {"id": "008", "title": "Follow-up", "body": "", "labels": "", "split": "Test"},
    {"id": "009", "title": "", "body": "Nodule seen.", "labels": "nodule", "split": "train"},
    {"id": "010", "title": "", "body": "   ", "labels": "nodule", "split": "test"},  # empty text -> dropped
]


def test_csv_delimited_labels_split_and_ids(tmp_path, caplog):
    path = _csv(tmp_path / "d.csv", ROWS)
    with caplog.at_level(logging.WARNING):
        c = load_table(str(path), text_columns=["title", "body"], label_column="labels",
                       id_column="id", split_column="split", name="mine")
    assert c.name == "mine" and c.ids == ["007", "008", "009"]
    assert c.texts == ["Chest film Enlarged heart.", "Follow-up", "Nodule seen."]
    assert c.label_names == ["cardio", "effusion", "nodule"]
    assert c.labels.tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]
    assert c.given_split.tolist() == ["train", "test", "train"]
    assert c.notes == {"raw": 4, "non_utf8": 0, "dropped_empty": 1, "dropped_duplicate": 0, "kept": 3}
    assert "empty text" in caplog.text


def test_tsv_default_columns_and_row_number_ids(tmp_path):
    path = _csv(tmp_path / "d.tsv", [{"text": "a, b", "labels": "x|y"}, {"text": "c", "labels": "y"}], sep="\t")
    c = load_table(str(path), label_delimiter="|")
    assert c.ids == ["0", "1"] and c.texts == ["a, b", "c"] and c.name == "csv"
    assert c.label_names == ["x", "y"] and c.labels.tolist() == [[1, 1], [0, 1]]


def test_jsonl_list_labels(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", [{"text": "one", "labels": ["b", "a"]}, {"text": "two", "labels": []},
                                         {"text": "three", "labels": "c;a"}])
    c = load_table(str(path))
    assert c.label_names == ["a", "b", "c"]
    assert c.labels.tolist() == [[1, 1, 0], [0, 0, 0], [1, 0, 1]]


def test_binary_label_columns(tmp_path):
    path = _csv(tmp_path / "d.csv", [{"text": "a", "Flu": 1, "Cold": 0}, {"text": "b", "Flu": 0, "Cold": 1}])
    c = load_table(str(path), label_column=None, label_columns=["Cold", "Flu"])
    assert c.label_names == ["Cold", "Flu"] and c.labels.tolist() == [[0, 1], [1, 0]]
    j = _jsonl(tmp_path / "d.jsonl", [{"text": "a", "Flu": True}, {"text": "b", "Flu": False}])
    assert load_table(str(j), label_columns=["Flu"]).labels.tolist() == [[1], [0]]


def test_binary_label_columns_bad_value(tmp_path):
    path = _csv(tmp_path / "d.csv", [{"text": "a", "Flu": 1}, {"text": "b", "Flu": 1}, {"text": "c", "Flu": 2}])
    with pytest.raises(DataError, match=r"'Flu' must hold 0/1, but data row 3 .* holds '2'"):
        load_table(str(path), label_columns=["Flu"])


def test_descriptions_yaml_json_csv(tmp_path):
    data = _csv(tmp_path / "d.csv", [{"text": "a", "labels": "x"}])
    (tmp_path / "desc.yaml").write_text("x: An x\n  label.\ny: Why.\n")
    c = load_table(str(data), descriptions_path=str(tmp_path / "desc.yaml"))
    assert c.descriptions == {"x": "An x label.", "y": "Why."}  # completeness is not checked here
    (tmp_path / "desc.json").write_text(json.dumps({"x": "Json x."}))
    assert load_label_descriptions(tmp_path / "desc.json") == {"x": "Json x."}
    _csv(tmp_path / "desc.csv", [{"label": "x", "description": "Csv x."}])
    assert load_table(str(data), descriptions_path=str(tmp_path / "desc.csv")).descriptions == {"x": "Csv x."}


def test_descriptions_errors(tmp_path):
    with pytest.raises(DataError, match="nope.yaml.*descriptions_path"):
        load_label_descriptions(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(DataError, match="list.yaml must map"):
        load_label_descriptions(tmp_path / "list.yaml")
    _csv(tmp_path / "d.csv", [{"name": "x", "text": "y"}])
    with pytest.raises(DataError, match=r"\['label', 'description'\]"):
        load_label_descriptions(tmp_path / "d.csv")


def test_missing_file_and_columns(tmp_path):
    with pytest.raises(DataError, match="nope.csv.*dataset.path"):
        load_table(str(tmp_path / "nope.csv"))
    path = _csv(tmp_path / "d.csv", [{"body": "a", "tags": "x"}])
    with pytest.raises(DataError, match=r"no column\(s\) \['text'\]; its columns are \['body', 'tags'\]. "
                                         r"Set dataset.source.text_columns"):
        load_table(str(path))
    with pytest.raises(DataError, match=r"\['labels'\].*dataset.source.label_column"):
        load_table(str(path), text_columns="body")
    with pytest.raises(DataError, match=r"\['A', 'B'\].*dataset.source.label_columns"):
        load_table(str(path), text_columns="body", label_columns=["A", "tags", "B"])
    with pytest.raises(DataError, match=r"\['uid'\].*dataset.source.id_column"):
        load_table(str(path), text_columns="body", label_column="tags", id_column="uid")
    with pytest.raises(ConfigError, match="label_column"):
        load_table(str(path), text_columns="body", label_column=None)
    (tmp_path / "d.xlsx").write_text("x")
    with pytest.raises(ConfigError, match="unsupported extension '.xlsx'"):
        load_table(str(tmp_path / "d.xlsx"))


def test_bad_split_and_duplicate_ids(tmp_path):
    path = _csv(tmp_path / "d.csv", [{"text": "a", "labels": "x", "s": "train", "id": "1"},
                                     {"text": "b", "labels": "x", "s": "valid", "id": "1"}])
    with pytest.raises(DataError, match=r"split column 's' has values \['valid'\]"):
        load_table(str(path), split_column="s")
    with pytest.raises(DataError, match="id column 'id' repeats the value '1'"):
        load_table(str(path), id_column="id")


def test_bad_jsonl(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"text": "a"}\nnot json\n')
    with pytest.raises(DataError, match="d.jsonl as JSON lines"):
        load_table(str(tmp_path / "d.jsonl"))


def test_non_utf8_replaced_and_counted(tmp_path, caplog):
    path = tmp_path / "d.csv"
    path.write_bytes(b"text,labels\nCaf\xe9 au lait,x\nfine,y\n\xff\xfe,y\n")
    with caplog.at_level(logging.WARNING):
        c = load_table(str(path))
    assert c.notes["non_utf8"] == 2 and c.texts[0] == "Caf\ufffd au lait" and len(c) == 3
    assert "not valid UTF-8" in caplog.text
    np.testing.assert_array_equal(c.labels, [[1, 0], [0, 1], [0, 1]])
