"""Label cells of a user table (mtlv/data/sources/table.py): one column of label names per row.

A cell is labels separated by a delimiter ("a;b"), a Python or JSON list literal ("['a', 'b']", as pandas
writes a list column to CSV; '["a", "b"]'), or a list (JSON lines). A bracketed or quoted cell that is
no such literal is an error naming its row: read as delimited text, each distinct cell would become one
"label" and the job would train on nonsense without a word.
"""
from __future__ import annotations

import ast
import json
import logging
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from mtlv.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def cell_text(value) -> str:
    return "" if _is_missing(value) else str(value).strip()


_CLOSERS = {"[": "]", "(": ")", "{": "}"}


def _literal_labels(text: str) -> list[str] | str | None:
    """What a bracketed or quoted label cell holds: a list of labels ("['a', 'b']" as pandas writes a list,
    '["a", "b"]' JSON), or one quoted string; None when the cell is neither bracketed nor quoted. Parsed as
    JSON or a Python literal (ast.literal_eval: never eval); raises ValueError when it cannot be."""
    wrapped = text[:1] in _CLOSERS and text.endswith(_CLOSERS[text[0]])
    if not text or not (wrapped or text[0] in "['\""):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
            raise ValueError(f"{type(exc).__name__}: {' '.join(str(exc).split())[:80]}") from None
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, set)) and all(isinstance(v, (str, int)) and not isinstance(v, bool)
                                                     for v in value):
        return [str(v) for v in value]
    raise ValueError(f"it holds a {type(value).__name__}, not a list of label names")


def _split_labels(value, delimiter: str, where: str) -> list[str]:
    if isinstance(value, (list, tuple, np.ndarray)):
        names = [cell_text(v) for v in value]
    else:
        text = cell_text(value)
        try:
            parsed = _literal_labels(text)
        except ValueError as exc:
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise DataError(f"{where}: the label cell {shown!r} is bracketed or quoted but is not a Python or JSON "
                            f"list ({exc}); write it as a list with every label quoted, ['a', 'b'] or [\"a\", \"b\"], "
                            f"or without brackets and quotes as labels separated by "
                            f"dataset.source.label_delimiter='{delimiter}' (a{delimiter}b)") from None
        names = parsed if isinstance(parsed, list) else (text if parsed is None else parsed).split(delimiter)
    return [n.strip() for n in names if n.strip()]


def delimited_labels(column: pd.Series, delimiter: str, rows: list[str], label_case: str,
                     file: Path) -> tuple[np.ndarray, list[str]]:
    """The label matrix and names of one label column (delimited text, list literals or JSON lists);
    `rows` names each cell's row for errors."""
    sets = [set(_split_labels(v, delimiter, f"{file}: {row}, column '{column.name}'")) for v, row in zip(column, rows)]
    sets = _case_variants(sets, label_case, file)
    names = sorted(set().union(*sets)) if sets else []
    y = np.array([[n in s for n in names] for s in sets], dtype=np.uint8).reshape(len(sets), len(names))
    return y, names


def _case_variants(sets: list[set[str]], label_case: str, file: Path) -> list[set[str]]:
    """Labels that differ only in case (Nodule, nodule, NODULE): a warning naming them (`keep`), or one label
    each, spelled as its most frequent form (`merge`)."""
    if label_case not in ("keep", "merge"):
        raise ConfigError(f"dataset.source.label_case={label_case}: use keep (labels that differ only in case stay "
                          "apart, with a warning) or merge (they become one label)")
    rows = Counter(name for labels in sets for name in labels)
    spellings: dict[str, list[str]] = defaultdict(list)
    for name in sorted(rows, key=lambda n: (-rows[n], n)):
        spellings[name.casefold()].append(name)
    clashes = [names for names in spellings.values() if len(names) > 1]
    if not clashes:
        return sets
    shown = "; ".join(", ".join(f"{n!r} ({rows[n]} row{'s' * (rows[n] != 1)})" for n in names) for names in clashes[:10])
    more = f"; and {len(clashes) - 10} more" if len(clashes) > 10 else ""
    if label_case == "keep":
        log.warning("%s: labels that differ only in case are separate labels: %s%s. If they are one label each, "
                    "set dataset.source.label_case=merge", file, shown, more)
        return sets
    log.warning("%s: labels that differ only in case are merged (dataset.source.label_case=merge), each under its "
                "most frequent spelling, the first named: %s%s", file, shown, more)
    rename = {name: names[0] for names in clashes for name in names[1:]}
    return [{rename.get(n, n) for n in labels} for labels in sets]
