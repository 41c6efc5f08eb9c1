"""Users' own data: a CSV/TSV or JSON-lines table with text, labels and (optionally) a split.

Labels come either from one delimited column ("a;b", a Python or JSON list literal such as
"['a', 'b']" as pandas writes a list column, or a list in JSON lines) or from one 0/1 column per
label. Descriptions for clustering can be supplied as YAML/JSON/CSV.
"""
from __future__ import annotations

import codecs
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mtlv.data.corpus import Corpus
from mtlv.data.sources.archive import decode_counting, refuse_special_file
from mtlv.data.sources.label_cells import cell_text, delimited_labels
from mtlv.errors import ConfigError, DataError

log = logging.getLogger(__name__)

_CSV_SEP = {".csv": ",", ".tsv": "\t"}
_JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
_TRUE_FALSE = {"true": 1, "false": 0, "yes": 1, "no": 0}


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),  # UTF-32 LE's starts like UTF-16 LE's
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _data_file(path: str) -> Path:
    """dataset.path as a regular file, or a DataError that says what it is instead."""
    file = Path(path).expanduser()
    if file.is_dir():
        inside = sorted(p.name for p in file.iterdir() if p.suffix.lower() in (*_CSV_SEP, *_JSON_SUFFIXES))
        example = file / (inside[0] if inside else "data.csv")
        holds = f" (it holds {', '.join(inside[:5])}{', ...' if len(inside) > 5 else ''})" if inside else ""
        raise DataError(f"dataset.path={file} is a folder; point at the CSV/TSV/JSONL file inside{holds}, "
                        f"e.g. dataset.path={example}")
    refuse_special_file(file)
    if not file.exists():
        raise DataError(f"data file {file} not found; set dataset.path=... to your .csv/.tsv/.jsonl file")
    return file


def _check_encoding(path: Path, encoding: str) -> str:
    """The codec's name; a file in UTF-16/32 read as UTF-8 (every character then looks like garbage with
    NUL bytes, and no column is found) is a DataError naming its encoding and the fix."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError as exc:
        raise ConfigError(f"dataset.source.encoding={encoding}: unknown encoding; use e.g. utf-8, utf-16, "
                          "latin-1 or cp1252") from exc
    if name != "utf-8":
        return name
    with path.open("rb") as fh:
        head = fh.read(4096)
    found, how = next(((codec, "starts with its byte-order mark") for bom, codec in _BOMS if head.startswith(bom)),
                      (None, ""))
    if found is None and b"\x00" in head:  # no byte-order mark, but NUL bytes: UTF-16/32 text (or not text at all)
        found, how = "utf-16", "has NUL bytes"
    if found is not None:
        raise DataError(f"{path} is not UTF-8: it looks like {found.upper()} (it {how}); re-save it as UTF-8 (e.g. "
                        f"`iconv -f {found.upper()} -t UTF-8 {path.name} > utf8-{path.name}`, or \"CSV UTF-8\" in a "
                        f"spreadsheet), or set dataset.source.encoding={found}")
    return name


def _read(path: Path, encoding: str = "utf-8") -> tuple[pd.DataFrame, int]:
    """The table, every undecodable byte replaced by U+FFFD, and how many bytes that was (warned about here, with
    their lines; counted while decoding: a U+FFFD the file itself holds is valid text, not an error)."""
    suffix = path.suffix.lower()
    if suffix not in _CSV_SEP and suffix not in _JSON_SUFFIXES:
        raise ConfigError(f"dataset.path={path} has an unsupported extension '{suffix}'; "
                          "use .csv, .tsv, .jsonl or .json (JSON lines)")
    decoded = decode_counting(path.read_bytes(), encoding)
    text = decoded.text[1:] if decoded.text.startswith("\ufeff") else decoded.text  # a UTF-8 byte-order mark
    if decoded.bad_bytes:
        lines = decoded.bad_lines
        where = (f" on {len(lines)} line(s) ({', '.join(map(str, lines[:5]))}{', ...' if len(lines) > 5 else ''})"
                 if lines else "")
        log.warning("%s: %d byte(s)%s were not valid %s and were replaced by U+FFFD. If the file is in another "
                    "encoding, re-save it as UTF-8 or set dataset.source.encoding=... (e.g. cp1252)", path,
                    decoded.bad_bytes, where, "UTF-8" if encoding == "utf-8" else encoding)
    try:
        if suffix in _CSV_SEP:
            # everything as text: ids like "007" keep their zeros, labels are parsed below
            frame = pd.read_csv(io.StringIO(text), sep=_CSV_SEP[suffix], dtype=str, keep_default_na=False)
        else:
            frame = pd.read_json(io.StringIO(text), lines=True, dtype=False)
    except (ValueError, pd.errors.ParserError) as exc:  # EmptyDataError is a ValueError
        kind = "JSON lines (one object per line)" if suffix in _JSON_SUFFIXES else "delimited text"
        raise DataError(f"cannot parse {path} as {kind} ({exc}); fix the file or convert it") from exc
    return frame, decoded.bad_bytes


def _require(df: pd.DataFrame, path: Path, columns: list[str], option: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{path} has no column(s) {missing}; its columns are {list(df.columns)}. "
                        f"Set {option}=... to the right column name(s)")


def _binary(df: pd.DataFrame, path: Path, columns: list[str], rows: list[str]) -> np.ndarray:
    out = np.zeros((len(df), len(columns)), dtype=np.uint8)
    for j, col in enumerate(columns):
        raw = df[col].map(lambda v: _TRUE_FALSE.get(cell_text(v).lower(), v) if isinstance(v, str) else v)
        values = pd.to_numeric(raw, errors="coerce")
        bad = ~values.isin([0, 1])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{path}: label column '{col}' must hold 0/1, but {rows[row]} holds "
                            f"{df[col].iloc[row]!r}; fix that value")
        out[:, j] = values.to_numpy(dtype=np.uint8)
    return out


def load_label_descriptions(path: str | Path) -> dict[str, str]:
    """label -> description from YAML/JSON (a mapping) or CSV (columns label,description)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"label descriptions file {path} not found; fix dataset.source.descriptions_path=...")
    if path.suffix.lower() in (".csv", ".tsv"):
        df = pd.read_csv(path, sep=_CSV_SEP[path.suffix.lower()], dtype=str, keep_default_na=False)
        _require(df, path, ["label", "description"], "the header of the descriptions file to label,description; "
                 "dataset.source.descriptions_path")
        return {r.label.strip(): " ".join(r.description.split()) for r in df.itertuples()}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))  # YAML reads JSON too
    except yaml.YAMLError as exc:
        raise DataError(f"cannot parse descriptions file {path} ({exc}); fix its YAML/JSON syntax") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise DataError(f"descriptions file {path} must map each label name to a description string "
                        '(e.g. {"Cardiomegaly": "Enlarged heart ..."})')
    return {str(k): " ".join(v.split()) for k, v in data.items()}


def load_table(path: str, text_columns: list[str] | str = "text", label_column: str | None = "labels",
               label_delimiter: str = ";", label_columns: list[str] | None = None,
               id_column: str | None = None, descriptions_path: str | None = None,
               name: str = "csv", split_column: str | None = None, drop_duplicates: bool = False,
               label_case: str = "keep", encoding: str = "utf-8") -> Corpus:
    """Load a user table; `label_columns` (one 0/1 column per label) wins over `label_column`.
    `drop_duplicates` keeps only the first row of each repeated text (else copies stay, and a split
    that puts copies on both sides of train/test is reported with a warning). `label_case=merge` makes
    labels of `label_column` that differ only in case one label. `encoding`: the file's text encoding."""
    file = _data_file(path)
    encoding = _check_encoding(file, encoding)
    text_columns = [text_columns] if isinstance(text_columns, str) else list(text_columns)
    if label_columns is None and label_column is None:
        raise ConfigError("set dataset.source.label_column (one delimited column) or "
                          "dataset.source.label_columns=[...] (one 0/1 column per label)")
    df, non_utf8 = _read(file, encoding)
    df = df.reset_index(drop=True)
    _require(df, file, text_columns, "dataset.source.text_columns")
    if label_columns is not None:
        _require(df, file, list(label_columns), "dataset.source.label_columns")
    else:
        _require(df, file, [label_column], "dataset.source.label_column")
    for col, option in ((id_column, "dataset.source.id_column"), (split_column, "dataset.source.split_column")):
        if col is not None:
            _require(df, file, [col], option)

    texts = pd.Series([" ".join(t for t in map(cell_text, row) if t)
                       for row in df[text_columns].itertuples(index=False)], dtype=object)
    empty = (texts == "").to_numpy(dtype=bool)
    if empty.any():
        log.warning("%s: dropped %d rows with empty text (columns %s)", file, int(empty.sum()), text_columns)
    ids = (df[id_column].map(cell_text) if id_column else pd.Series(range(len(df))).astype(str))
    if id_column and ids.duplicated().any():
        raise DataError(f"{file}: id column '{id_column}' repeats the value {ids[ids.duplicated()].iloc[0]!r}; "
                        "make ids unique or unset dataset.source.id_column to use row numbers")

    keep = ~empty
    repeated = (texts.duplicated() & keep).to_numpy(dtype=bool)
    if drop_duplicates and repeated.any():
        log.warning("%s: dropped %d rows whose text repeats an earlier row (dataset.source.drop_duplicates=true)",
                    file, int(repeated.sum()))
        keep &= ~repeated
    line = "line {}" if file.suffix.lower() in _JSON_SUFFIXES else "data row {} (1-based, header not counted)"
    rows = [line.format(i + 1) for i in np.flatnonzero(keep)]  # the kept rows, numbered as in the file
    df, texts, ids = df[keep].reset_index(drop=True), texts[keep].tolist(), ids[keep].tolist()
    if label_columns is not None:
        y, names = _binary(df, file, list(label_columns), rows), list(label_columns)
    else:
        y, names = delimited_labels(df[label_column], label_delimiter, rows, label_case, file)
    given_split = None
    if split_column:
        given_split = df[split_column].map(lambda v: cell_text(v).lower()).to_numpy()
        bad = sorted(set(given_split.tolist()) - {"train", "test"})
        if bad:
            raise DataError(f"{file}: split column '{split_column}' has values {bad}; use train or test "
                            "(or unset dataset.source.split_column)")
    descriptions = load_label_descriptions(descriptions_path) if descriptions_path else {}
    # non_utf8: the file's bytes that were not valid in its encoding (replaced by U+FFFD)
    notes = {"raw": len(keep), "non_utf8": non_utf8, "dropped_empty": int(empty.sum()),
             "dropped_duplicate": int(repeated.sum()) if drop_duplicates else 0, "kept": len(texts)}
    return Corpus(name=name, ids=ids, texts=texts, labels=y, label_names=names,
                  descriptions=descriptions, given_split=given_split, notes=notes)
