"""Prediction files: one row per document, `id`, then `true:<label>` and `prob:<label>` columns.

Every job writes them for validation and test; aggregation of a GMTL/STL sweep is a join of its
group jobs' files on `id`, so no architecture needs its own evaluation code.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mtlv.errors import DataError
from mtlv.io import atomic_path


@dataclass
class Predictions:
    ids: list[str]
    probs: np.ndarray  # (n, m) float
    targets: np.ndarray  # (n, m) 0/1
    label_names: list[str]

    def to_frame(self) -> pd.DataFrame:
        cols = {"id": self.ids}
        cols.update({f"true:{n}": self.targets[:, j].astype(int) for j, n in enumerate(self.label_names)})
        cols.update({f"prob:{n}": self.probs[:, j] for j, n in enumerate(self.label_names)})
        return pd.DataFrame(cols)

    def save(self, path: str | Path) -> Path:
        with atomic_path(path) as tmp:
            self.to_frame().to_csv(tmp, index=False, float_format="%.6f")
        return Path(path)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "Predictions":
        labels = [c[len("prob:"):] for c in frame.columns if c.startswith("prob:")]
        return cls(
            ids=frame["id"].astype(str).tolist(),
            probs=frame[[f"prob:{n}" for n in labels]].to_numpy(dtype=np.float64),
            targets=frame[[f"true:{n}" for n in labels]].to_numpy(dtype=np.int64),
            label_names=labels,
        )

    @classmethod
    def load(cls, path: str | Path) -> "Predictions":
        return cls.from_frame(pd.read_csv(path, dtype={"id": str}))

    def select(self, label_names: list[str]) -> "Predictions":
        cols = [self.label_names.index(n) for n in label_names]
        return Predictions(self.ids, self.probs[:, cols], self.targets[:, cols], list(label_names))


def join(parts: list[Predictions], label_order: list[str], sources: list[str | Path] | None = None) -> Predictions:
    """Join the label columns of several jobs on document id, in `label_order`; `sources` names the
    file each part came from, for the error messages."""
    frame = None
    for i, part in enumerate(parts):
        f = part.to_frame().set_index("id")
        repeated = f.index[f.index.duplicated()].unique().tolist()
        if repeated:  # a join on a repeated id multiplies rows and silently skews every metric
            where = sources[i] if sources else f"prediction part {i}"
            raise DataError(f"{where} lists document id(s) {repeated[:5]} more than once ({len(f)} rows, "
                            f"{f.index.nunique()} distinct ids); each document must appear once. Delete the "
                            "file's job folder and rerun the same command to predict again.")
        frame = f if frame is None else frame.join(f, how="outer")
    if frame is None:
        raise DataError("no prediction files to join")
    if frame.isna().any().any():
        raise DataError("prediction files of the group jobs cover different documents; were they trained on the same split?")
    missing = [n for n in label_order if f"prob:{n}" not in frame.columns]
    if missing:
        raise DataError(f"no predictions for labels {missing}")
    frame = frame.reset_index()
    return Predictions.from_frame(frame[["id"] + [f"true:{n}" for n in label_order] + [f"prob:{n}" for n in label_order]])
