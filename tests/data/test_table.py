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
    assert c.notes["non_utf8"] == 3 and c.texts[0] == "Caf\ufffd au lait" and len(c) == 3
    assert "3 byte(s) on 2 line(s) (2, 4) were not valid UTF-8" in caplog.text
    np.testing.assert_array_equal(c.labels, [[1, 0], [0, 1], [0, 1]])


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_replacement_character_written_in_the_file_is_text_not_a_decoding_error(tmp_path, caplog, suffix):
    """Valid UTF-8 that holds U+FFFD itself (text copied from an earlier lossy conversion) decodes without error:
    no warning, no count. Only bytes that are not UTF-8 are counted, once each."""
    rows = [("caf\ufffd au lait", "x"), ("fine", "y"), ("also fine", "x")]
    path = tmp_path / f"d{suffix}"
    if suffix == ".csv":
        path.write_text("text,labels\n" + "".join(f"{t},{lab}\n" for t, lab in rows), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps({"text": t, "labels": [lab]}) + "\n" for t, lab in rows), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        c = load_table(str(path))
    assert c.notes["non_utf8"] == 0 and "not valid" not in caplog.text
    assert c.texts[0] == "caf\ufffd au lait"
    # the same file with one invalid byte more: that byte is counted, not the U+FFFD that was there already
    path.write_bytes(path.read_bytes().replace(b"also", b"al\xe9so"))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        c = load_table(str(path))
    line = 4 if suffix == ".csv" else 3
    assert c.notes["non_utf8"] == 1 and f"1 byte(s) on 1 line(s) ({line}) were not valid UTF-8" in caplog.text
    assert c.texts == ["caf\ufffd au lait", "fine", "al\ufffdso fine"]


# ------------------------------------------------------------------ label cells that are list literals
def test_python_and_json_list_cells_are_lists_of_labels(tmp_path):
    """pandas writes a list column as "['Cardiomegaly', 'Nodule']"; before, each such cell was one label."""
    frame = pd.DataFrame({"text": ["t0", "t1", "t2", "t3", "t4"],
                          "labels": [["Nodule", "Cardiomegaly"], [], ["Mass"], ["Effusion, Malignant", "Nodule"],
                                     ["Cardiomegaly"]]})
    frame.to_csv(tmp_path / "py.csv", index=False)  # pandas' own text for lists
    assert (tmp_path / "py.csv").read_text().splitlines()[1] == "t0,\"['Nodule', 'Cardiomegaly']\""
    c = load_table(str(tmp_path / "py.csv"))
    assert c.label_names == ["Cardiomegaly", "Effusion, Malignant", "Mass", "Nodule"]
    assert c.labels.tolist() == [[1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 1], [1, 0, 0, 0]]

    rows = [{"text": "a", "labels": '["b", "x;y"]'}, {"text": "b", "labels": "a;c"},
            {"text": "c", "labels": "('c', 'a')"}, {"text": "d", "labels": "'b;c'"}, {"text": "e", "labels": "[]"}]
    c = load_table(str(_csv(tmp_path / "mixed.csv", rows)))  # JSON array, delimited, tuple, one quoted string
    assert c.label_names == ["a", "b", "c", "x;y"]
    assert c.labels.tolist() == [[0, 1, 0, 1], [1, 0, 1, 0], [1, 0, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    j = _jsonl(tmp_path / "d.jsonl", [{"text": "a", "labels": "['q', 'p']"}, {"text": "b", "labels": ["p"]}])
    assert load_table(str(j)).labels.tolist() == [[1, 1], [1, 0]]


@pytest.mark.parametrize("cell, why", [("['Nodule', 'Mass'", "SyntaxError"), ("[Nodule, Mass]", "ValueError"),
                                       ("{'a': 1}", "holds a dict"), ("'Nodule", "SyntaxError"),
                                       ("[['a'], 'b']", "holds a list, not a list of label names")])
def test_bracketed_or_quoted_cell_that_does_not_parse_is_an_error_naming_row_and_fix(tmp_path, cell, why):
    rows = [{"text": "a", "labels": "x"}, {"text": "", "labels": "x"}, {"text": "c", "labels": cell}]
    path = _csv(tmp_path / "d.csv", rows)
    with pytest.raises(DataError) as err:
        load_table(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: data row 3 (1-based, header not counted), column 'labels': the label cell "
                              f"{cell!r} is bracketed or quoted but is not a Python or JSON list (")  # row 2 dropped
    assert why in message and "['a', 'b'] or [\"a\", \"b\"]" in message and "label_delimiter=';' (a;b)" in message


def test_labels_differing_only_in_case_warn_or_merge(tmp_path, caplog):
    rows = [{"text": "a", "labels": "nodule;Mass"}, {"text": "b", "labels": "Nodule"}, {"text": "c", "labels": "NODULE"},
            {"text": "d", "labels": "Nodule;mass"}, {"text": "e", "labels": "Effusion"}]
    path = _csv(tmp_path / "d.csv", rows)
    with caplog.at_level(logging.WARNING):
        kept = load_table(str(path))
    assert kept.label_names == ["Effusion", "Mass", "NODULE", "Nodule", "mass", "nodule"]
    assert (f"{path}: labels that differ only in case are separate labels: 'Nodule' (2 rows), 'NODULE' (1 row), "
            "'nodule' (1 row); 'Mass' (1 row), 'mass' (1 row). If they are one label each, set "
            "dataset.source.label_case=merge") in caplog.messages
    merged = load_table(str(path), label_case="merge")
    assert merged.label_names == ["Effusion", "Mass", "Nodule"]
    assert merged.labels.tolist() == [[0, 1, 1], [0, 0, 1], [0, 0, 1], [0, 1, 1], [1, 0, 0]]
    with pytest.raises(ConfigError, match="dataset.source.label_case=upper: use keep .* or merge"):
        load_table(str(path), label_case="upper")


# ------------------------------------------------------------------ what dataset.path points at
def test_utf16_file_is_an_error_naming_the_encoding_and_the_fix_or_read_with_encoding(tmp_path):
    """Before: "has no column(s) ['text']; its columns are ['\\ufffd\\ufffdt\\x00e\\x00x\\x00t\\x00', ...]"."""
    rows = "text,labels\nCafé au lait,a;b\nbye,b\n"
    (tmp_path / "bom.csv").write_bytes(rows.encode("utf-16"))  # with a byte-order mark
    (tmp_path / "le.csv").write_bytes(rows.encode("utf-16-le"))  # without
    with pytest.raises(DataError) as err:
        load_table(str(tmp_path / "bom.csv"))
    assert str(err.value) == (f"{tmp_path / 'bom.csv'} is not UTF-8: it looks like UTF-16 (it starts with its "
                              "byte-order mark); re-save it as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8 bom.csv > "
                              "utf8-bom.csv`, or \"CSV UTF-8\" in a spreadsheet), or set dataset.source.encoding=utf-16")
    with pytest.raises(DataError, match="le.csv is not UTF-8: it looks like UTF-16 \\(it has NUL bytes\\)"):
        load_table(str(tmp_path / "le.csv"))
    for name, encoding in (("bom.csv", "utf-16"), ("le.csv", "utf-16-le")):
        c = load_table(str(tmp_path / name), encoding=encoding)
        assert c.texts == ["Café au lait", "bye"] and c.label_names == ["a", "b"], name
    with pytest.raises(ConfigError, match="dataset.source.encoding=utf-99: unknown encoding"):
        load_table(str(tmp_path / "bom.csv"), encoding="utf-99")


def test_folder_or_pipe_as_dataset_path_says_what_it_is(tmp_path):
    """Before: both were "data file ... not found"."""
    import os

    folder = tmp_path / "data"
    folder.mkdir()
    _csv(folder / "reports.csv", ROWS)
    with pytest.raises(DataError) as err:
        load_table(str(folder))
    assert str(err.value) == (f"dataset.path={folder} is a folder; point at the CSV/TSV/JSONL file inside (it holds "
                              f"reports.csv), e.g. dataset.path={folder / 'reports.csv'}")
    pipe = tmp_path / "rows.csv"
    os.mkfifo(pipe)
    with pytest.raises(DataError, match=r"rows.csv is not a regular file but a named pipe \(FIFO\); save the data "
                                        r"to a file and set dataset.path"):
        load_table(str(pipe))


@pytest.mark.parametrize("source", ["openi", "ohsumed"])
def test_a_pipe_is_named_as_such_by_the_other_loaders_too(tmp_path, source):
    """A FIFO named like a data file must not be read (it would block until someone writes to it)."""
    import os

    from mtlv.data.sources.ohsumed import load_ohsumed
    from mtlv.data.sources.openi import load_openi

    import threading

    pipe = tmp_path / ("indiana_reports.csv" if source == "openi" else "ohsumed-all-docs.tar.gz")
    os.mkfifo(pipe)
    writer = threading.Thread(target=lambda: open(pipe, "wb").close(), daemon=True)  # a reader gets EOF, not a hang
    writer.start()
    try:
        with pytest.raises(DataError, match=r"is not a regular file but a named pipe \(FIFO\)"):
            load_openi(str(pipe), download=False) if source == "openi" else load_ohsumed(str(pipe))
    finally:
        os.close(os.open(pipe, os.O_RDONLY | os.O_NONBLOCK))  # lets the writer's open return
        writer.join(timeout=10)
