"""Published numbers of the reference study, shown beside a reproduction with the difference.

`reference.csv` (shipped with MTLV) is long format, one published number per row:

    dataset,table,arch,model,setting,metric,value,source

- dataset: openi | ohsumed (the `dataset.name` of the runs); table: 1..5 (the report's table numbers)
- arch: stl | mtl | gmhl | gmtl | baseline-<features>-<classifier>; model: bert | biobert | bluebert | -
- setting: '' (table 1: the architecture's reported result), '<feature>-k<k>' (table 2, e.g. label-k3),
  a label name (table 4)
- metric: f1_macro | f1_micro | subset_accuracy (fractions in 0..1) | f1 (table 4) | elapsed_s (seconds)
- value in the report's units (fractions, not percent); source: where the number is printed
  (e.g. "Rahimi 2021, MTLV thesis, Dalhousie University, Table 4.3").

Only numbers checked against the publication belong here. The file ships with its header only until
such rows are verified (see docs/reproduce.md); `reference=<path>` points the report at your own file.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from mtlv.errors import DataError

PACKAGED = Path(__file__).with_name("reference.csv")
COLUMNS = ["dataset", "table", "arch", "model", "setting", "metric", "value", "source"]


class Reference:
    def __init__(self, frame: pd.DataFrame):
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(f"reference table lacks columns {missing}; expected {','.join(COLUMNS)} "
                            "(fix the file given as reference=..., or reference=null for the packaged one)")
        frame = frame[COLUMNS].copy()
        for col in ("dataset", "table", "arch", "model", "setting", "metric", "source"):
            frame[col] = frame[col].fillna("").astype(str).str.strip()
        frame["value"] = pd.to_numeric(frame["value"], errors="raise")
        self.frame = frame

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Reference":
        return cls(pd.read_csv(path or PACKAGED, dtype={"table": str, "setting": str}, keep_default_na=False,
                               na_values={"value": [""]}))

    def __len__(self) -> int:
        return len(self.frame)

    def has(self, table: int | str, dataset: str | None = None, metric: str | None = None) -> bool:
        rows = self._rows(table, dataset)
        return bool(len(rows if metric is None else rows[rows.metric == metric]))

    def value(self, table: int | str, dataset: str, arch: str, model: str, metric: str,
              setting: str = "") -> float | None:
        rows = self._rows(table, dataset)
        rows = rows[(rows.arch == arch) & (rows.model == model) & (rows.metric == metric)
                    & (rows.setting == (setting or ""))]
        return float(rows.value.iloc[0]) if len(rows) else None

    def sources(self) -> list[str]:
        return sorted(s for s in self.frame.source.unique() if s)

    def _rows(self, table, dataset):
        rows = self.frame[self.frame.table == str(table)]
        return rows if dataset is None else rows[rows.dataset == dataset]
