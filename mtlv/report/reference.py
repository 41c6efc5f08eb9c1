"""Published numbers of the reference study, shown beside a reproduction with the difference.

`reference.csv` (shipped with MTLV) holds every number the reference study prints in its result tables
(F. Rahimi, *MTLV: a library for building deep multi-task learning architectures*, thesis, Dalhousie
University, 2021; Tables 4.3-4.9, Appendix C/D), one per row, in long format:

    dataset,table,arch,model,setting,metric,value,std,source

- dataset: openi | ohsumed (the `dataset.name` of the runs); table: 1..5 (the report's table numbers)
- arch: stl | mtl | gmhl | gmtl | gmtl-vs-mtl (table 3) | baseline-<features>-<classifier>;
  model: bert | biobert | bluebert | -
- setting: '' (table 1: the architecture's reported result; for GMHL/GMTL the clustering the thesis chose,
  named in `source`), '<feature>-k<k>' (table 2, e.g. label-k3), a label name as the thesis prints it (table 4)
- metric: f1_macro | f1_micro | subset_accuracy (fractions in 0..1) | f1 (table 4) | p_value_f1_macro,
  p_value_f1_micro (table 3) | elapsed_s (table 5: all folds of one configuration, seconds)
- value, std: in the report's units (fractions, not percent); std = the ± over folds ('' when not printed)
- source: where the number is printed (e.g. "Rahimi 2021, MTLV thesis, Dalhousie University, Table 4.3").

The rows are transcribed as printed, the thesis's own inconsistencies included (docs/reproduce.md).
The thesis chose each decision threshold on the test set; MTLV chooses it on validation (CAVEAT).
Label names differ from MTLV's loaders in spelling only; `thesis_label` maps them explicitly.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mtlv.errors import DataError

PACKAGED = Path(__file__).with_name("reference.csv")
COLUMNS = ["dataset", "table", "arch", "model", "setting", "metric", "value", "std", "source"]
CAVEAT = ("The reference study chose each decision threshold on the test set; MTLV chooses it on validation, "
          "so equal models are expected to score somewhat lower here.")

# MTLV's Open-I loader keeps the MeSH spelling with a slash; the thesis prints a space (and Appendix A.1
# abbreviates the last one to "thoracic vertebrae deg."). Every other Open-I label is spelt alike.
OPENI_LABELS = {"lung/hyperdistention": "lung hyperdistention", "lung/hypoinflation": "lung hypoinflation",
                "spine/degenerative": "spine degenerative",
                "thoracic vertebrae/degenerative": "thoracic vertebrae degenerative",
                "thoracic vertebrae deg.": "thoracic vertebrae degenerative"}


def thesis_label(dataset: str, label: str) -> str:
    """The thesis's name of an MTLV label: OHSUMED categories by their code ("C04 Neoplasms" -> "C04"),
    Open-I's slashed MeSH names by OPENI_LABELS."""
    label = str(label).strip()
    if dataset == "ohsumed":
        return label.split(" ", 1)[0]
    if dataset == "openi":
        return OPENI_LABELS.get(label, label)
    return label


class Reference:
    def __init__(self, frame: pd.DataFrame, fallback_model: str | None = None):
        missing = [c for c in COLUMNS if c not in frame.columns and c != "std"]
        if missing:
            raise DataError(f"reference table lacks columns {missing}; expected {','.join(COLUMNS)} "
                            "(fix the file given as reference=..., or reference=null for the packaged one)")
        frame = frame.reindex(columns=COLUMNS).copy()
        for col in ("dataset", "table", "arch", "model", "setting", "metric", "source"):
            frame[col] = frame[col].fillna("").astype(str).str.strip()
        frame["value"] = pd.to_numeric(frame["value"], errors="raise")
        frame["std"] = pd.to_numeric(frame["std"].replace("", np.nan), errors="raise")
        self.frame = frame
        # A model the reference never ran (minilm, tiny, yours) is compared with this one of its models.
        self.fallback_model = fallback_model or None

    @classmethod
    def load(cls, path: str | Path | None = None, fallback_model: str | None = None) -> "Reference":
        frame = pd.read_csv(path or PACKAGED, dtype={"table": str, "setting": str}, keep_default_na=False,
                            na_values={"value": [""], "std": [""]})
        return cls(frame, fallback_model)

    def __len__(self) -> int:
        return len(self.frame)

    def has(self, table: int | str, dataset: str | None = None, metric: str | None = None) -> bool:
        rows = self._rows(table, dataset)
        return bool(len(rows if metric is None else rows[rows.metric == metric]))

    def model_for(self, dataset: str, model: str) -> str | None:
        """The reference model a reproduction with `model` is compared with (None: none)."""
        models = set(self.frame.model[self.frame.dataset == dataset])
        if model in models:
            return model
        if model in ("", "-"):  # no encoder (the classical baselines): nothing stands in
            return None
        return self.fallback_model if self.fallback_model in models else None

    def entry(self, table: int | str, dataset: str, arch: str, model: str, metric: str,
              setting: str = "") -> tuple[float, float] | None:
        """(value, std) of the published number (std NaN when not printed), or None."""
        ref_model = self.model_for(dataset, model)
        if ref_model is None:
            return None
        if str(table) == "4":
            setting = thesis_label(dataset, setting)
        rows = self._rows(table, dataset)
        rows = rows[(rows.arch == arch) & (rows.model == ref_model) & (rows.metric == metric)
                    & (rows.setting == (setting or ""))]
        return (float(rows.value.iloc[0]), float(rows["std"].iloc[0])) if len(rows) else None

    def chosen_setting(self, dataset: str, arch: str, model: str) -> str:
        """The clustering setting behind a published table-1 GMHL/GMTL number ('description-k5'), from its source
        ("... Table 4.3 (best clustering: description-k5)"); '' when none is named."""
        ref_model = self.model_for(dataset, model)
        rows = self._rows(1, dataset)
        rows = rows[(rows.arch == arch) & (rows.model == ref_model) & rows.source.str.contains("best clustering: ")]
        return rows.source.iloc[0].split("best clustering: ", 1)[1].rstrip(")").strip() if len(rows) else ""

    def value(self, table: int | str, dataset: str, arch: str, model: str, metric: str,
              setting: str = "") -> float | None:
        hit = self.entry(table, dataset, arch, model, metric, setting)
        return None if hit is None else hit[0]

    def datasets(self) -> set[str]:
        """The datasets the reference has published numbers for."""
        return set(self.frame.dataset[self.frame.dataset != ""])

    def sources(self) -> list[str]:
        return sorted(s for s in self.frame.source.unique() if s)

    def _rows(self, table, dataset):
        rows = self.frame[self.frame.table == str(table)]
        return rows if dataset is None else rows[rows.dataset == dataset]
