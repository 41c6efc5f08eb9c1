"""What the report reads from run artifacts rather than metrics: test label counts and elbow curves."""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import pandas as pd

from mtlv.report.collect import artifact

# MLflow draws a progress bar per downloaded file: dozens of bars say nothing in a report log.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def label_counts(uri: str, runs: pd.DataFrame) -> pd.DataFrame | None:
    """label -> count (test positives, mean over the distinct (fold, seed) splits) and share (of test docs).

    Read from `label_counts.csv` of single-job results (MTL first: every job of one split has the same
    counts); label order is the dataset's."""
    singles = runs[runs.role == "job"].copy()
    singles["rank"] = singles.arch.map({"mtl": 0, "gmhl": 1}).fillna(2)
    tables = []
    with tempfile.TemporaryDirectory(prefix="mtlv-report-") as tmp:
        for i, (_, group) in enumerate(singles.sort_values("rank").groupby(["fold", "seed"], sort=True)):
            for j, (_, row) in enumerate(group.iterrows()):  # the first run of this split that has the file
                path = artifact(uri, row, "label_counts.csv", f"{tmp}/{i}-{j}")
                if path is not None:
                    tables.append(pd.read_csv(path, index_col=0))
                    break
    if not tables:
        return None
    docs = "(documents)"
    counts = pd.concat([t["test"] for t in tables], axis=1)
    n_docs = counts.loc[docs] if docs in counts.index else pd.Series(np.nan, index=counts.columns)
    share = counts.drop(index=docs, errors="ignore").div(n_docs, axis=1)
    return pd.DataFrame({"count": counts.drop(index=docs, errors="ignore").mean(axis=1), "share": share.mean(axis=1)})


def elbow_curves(uri: str, runs: pd.DataFrame) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """(model, feature) -> [(k, sum of distances)] from the elbow.json of one GMHL/GMTL result each.

    The curve depends on the labels, the feature and the encoder only, not on the fold or the chosen k."""
    curves = {}
    clustered = runs[runs.arch.isin(["gmtl", "gmhl"]) & runs.feature.notna() & (runs.feature != "given")]
    with tempfile.TemporaryDirectory(prefix="mtlv-report-") as tmp:
        for i, ((model, feature), group) in enumerate(clustered.groupby(["model", "feature"])):
            for j, (_, row) in enumerate(group.sort_values(["fold", "seed"]).iterrows()):
                path = artifact(uri, row, "elbow.json", f"{tmp}/{i}-{j}")
                if path is not None:
                    points = json.loads(path.read_text())
                    curves[(model, feature)] = [(int(p["k"]), float(p["sum_of_distances"])) for p in points]
                    break
    return curves
