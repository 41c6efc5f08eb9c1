"""Users' own data: a CSV/TSV or JSON-lines table with text, labels and (optionally) a split.

Labels come either from one delimited column ("a;b", or a list in JSON lines) or from one
0/1 column per label. Descriptions for clustering can be supplied as YAML/JSON/CSV.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mtlv.data.corpus import Corpus
from mtlv.errors import ConfigError, DataError

log = logging.getLogger(__name__)

_CSV_SEP = {".csv": ",", ".tsv": "\t"}
_JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
_TRUE_FALSE = {"true": 1, "false": 0, "yes": 1, "no": 0}


def _read(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in _CSV_SEP:
            # everything as text: ids like "007" keep their zeros, labels are parsed below
            return pd.read_csv(path, sep=_CSV_SEP[suffix], dtype=str, keep_default_na=False,
                               encoding_errors="replace")
        if suffix in _JSON_SUFFIXES:
            return pd.read_json(path, lines=True, dtype=False, encoding_errors="replace")
    except (ValueError, pd.errors.ParserError, UnicodeError) as exc:  # EmptyDataError is a ValueError
        kind = "JSON lines (one object per line)" if suffix in _JSON_SUFFIXES else "delimited text"
        raise DataError(f"cannot parse {path} as {kind} ({exc}); fix the file or convert it") from exc
    raise ConfigError(f"dataset.path={path} has an unsupported extension '{suffix}'; "
                      "use .csv, .tsv, .jsonl or .json (JSON lines)")


def _require(df: pd.DataFrame, path: Path, columns: list[str], option: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{path} has no column(s) {missing}; its columns are {list(df.columns)}. "
                        f"Set {option}=... to the right column name(s)")


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _cell_text(value) -> str:
    return "" if _is_missing(value) else str(value).strip()


def _split_labels(value, delimiter: str) -> list[str]:
    if isinstance(value, (list, tuple, np.ndarray)):
        names = [_cell_text(v) for v in value]
    else:
        names = _cell_text(value).split(delimiter)
    return [n.strip() for n in names if n.strip()]


def _delimited(df: pd.DataFrame, column: str, delimiter: str) -> tuple[np.ndarray, list[str]]:
    sets = [set(_split_labels(v, delimiter)) for v in df[column]]
    names = sorted(set().union(*sets)) if sets else []
    y = np.array([[n in s for n in names] for s in sets], dtype=np.uint8).reshape(len(sets), len(names))
    return y, names


def _binary(df: pd.DataFrame, path: Path, columns: list[str]) -> np.ndarray:
    out = np.zeros((len(df), len(columns)), dtype=np.uint8)
    for j, col in enumerate(columns):
        raw = df[col].map(lambda v: _TRUE_FALSE.get(_cell_text(v).lower(), v) if isinstance(v, str) else v)
        values = pd.to_numeric(raw, errors="coerce")
        bad = ~values.isin([0, 1])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{path}: label column '{col}' must hold 0/1, but data row {row + 1} "
                            f"(1-based, header not counted) holds {df[col].iloc[row]!r}; fix that value")
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
               name: str = "csv", split_column: str | None = None, drop_duplicates: bool = False) -> Corpus:
    """Load a user table; `label_columns` (one 0/1 column per label) wins over `label_column`.
    `drop_duplicates` keeps only the first row of each repeated text (else copies stay, and a split
    that puts copies on both sides of train/test is reported with a warning)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"data file {file} not found; set dataset.path=... to your .csv/.tsv/.jsonl file")
    text_columns = [text_columns] if isinstance(text_columns, str) else list(text_columns)
    if label_columns is None and label_column is None:
        raise ConfigError("set dataset.source.label_column (one delimited column) or "
                          "dataset.source.label_columns=[...] (one 0/1 column per label)")
    df = _read(file).reset_index(drop=True)
    _require(df, file, text_columns, "dataset.source.text_columns")
    if label_columns is not None:
        _require(df, file, list(label_columns), "dataset.source.label_columns")
    else:
        _require(df, file, [label_column], "dataset.source.label_column")
    for col, option in ((id_column, "dataset.source.id_column"), (split_column, "dataset.source.split_column")):
        if col is not None:
            _require(df, file, [col], option)

    used = text_columns + list(label_columns or [label_column]) + [c for c in (id_column, split_column) if c]
    non_utf8 = int(df[used].apply(lambda c: c.map(lambda v: "\ufffd" in str(v))).any(axis=1).sum())
    if non_utf8:
        log.warning("%s: %d rows were not valid UTF-8; bad bytes replaced by U+FFFD", file, non_utf8)
    texts = pd.Series([" ".join(t for t in map(_cell_text, row) if t)
                       for row in df[text_columns].itertuples(index=False)], dtype=object)
    empty = (texts == "").to_numpy(dtype=bool)
    if empty.any():
        log.warning("%s: dropped %d rows with empty text (columns %s)", file, int(empty.sum()), text_columns)
    ids = (df[id_column].map(_cell_text) if id_column else pd.Series(range(len(df))).astype(str))
    if id_column and ids.duplicated().any():
        raise DataError(f"{file}: id column '{id_column}' repeats the value {ids[ids.duplicated()].iloc[0]!r}; "
                        "make ids unique or unset dataset.source.id_column to use row numbers")

    keep = ~empty
    repeated = (texts.duplicated() & keep).to_numpy(dtype=bool)
    if drop_duplicates and repeated.any():
        log.warning("%s: dropped %d rows whose text repeats an earlier row (dataset.source.drop_duplicates=true)",
                    file, int(repeated.sum()))
        keep &= ~repeated
    df, texts, ids = df[keep].reset_index(drop=True), texts[keep].tolist(), ids[keep].tolist()
    if label_columns is not None:
        y, names = _binary(df, file, list(label_columns)), list(label_columns)
    else:
        y, names = _delimited(df, label_column, label_delimiter)
    given_split = None
    if split_column:
        given_split = df[split_column].map(lambda v: _cell_text(v).lower()).to_numpy()
        bad = sorted(set(given_split.tolist()) - {"train", "test"})
        if bad:
            raise DataError(f"{file}: split column '{split_column}' has values {bad}; use train or test "
                            "(or unset dataset.source.split_column)")
    descriptions = load_label_descriptions(descriptions_path) if descriptions_path else {}
    notes = {"raw": len(keep), "non_utf8": non_utf8, "dropped_empty": int(empty.sum()),
             "dropped_duplicate": int(repeated.sum()) if drop_duplicates else 0, "kept": len(texts)}
    return Corpus(name=name, ids=ids, texts=texts, labels=y, label_names=names,
                  descriptions=descriptions, given_split=given_split, notes=notes)
