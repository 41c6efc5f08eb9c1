"""Training-budget curves: validation and test F1-macro after every epoch, per architecture.

A job trained with `data.test_curve=true` logs, after every epoch, `val/f1_macro` and `curve/test_f1_macro`
(both at threshold 0.5: the threshold is chosen on validation only once training has ended), with
`curve/val_n_labels`, `curve/test_n_labels` (how many labels each F1-macro averages: those with positives)
and `curve/epoch`. The curves choose nothing: checkpoint, threshold and clustering setting are chosen on
validation.

An STL/GMTL result is one model per group, so its curve is computed over the joined label matrix: at
epoch e, the cell's F1-macro is the mean F1 over all its labels, i.e. the label-weighted mean of its
group jobs' F1-macro, sum_j n_j * F1_j / sum_j n_j. Epochs that not every group job reached (early
stopping) are left out of the cell's curve; a cell with a group job without a curve has none.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtlv import tracking
from mtlv.report.collect import search_all
from mtlv.report.study_tables import ARCHS, chosen, model_order

KEYS = {"epoch": "curve/epoch", "val": "val/f1_macro", "val_n": "curve/val_n_labels",
        "test": "curve/test_f1_macro", "test_n": "curve/test_n_labels"}


def job_curve(client, run_id: str) -> pd.DataFrame:
    """epoch, val, val_n, test, test_n of one job run (empty when it logged no curve)."""
    series = {}
    for name, key in KEYS.items():
        history = tracking.retry_locked(client.get_metric_history)(run_id, key)
        series[name] = pd.Series({m.step: m.value for m in sorted(history, key=lambda m: m.timestamp)},
                                 dtype=float)  # a resumed run may log a step again: the last value counts
    if series["epoch"].empty or series["test"].empty:
        return pd.DataFrame(columns=list(KEYS))
    frame = pd.DataFrame(series).dropna(subset=["epoch"])
    frame["epoch"] = frame["epoch"].astype(int)
    return frame.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)


def cell_curve(jobs: list[pd.DataFrame]) -> pd.DataFrame:
    """The joined-label-matrix curve of an STL/GMTL cell from its group jobs' curves; none when a job has
    none (e.g. it finished before curves were switched on): part of the labels is not the cell's curve."""
    if not jobs or any(j.empty for j in jobs):
        return pd.DataFrame(columns=["epoch", "val", "test"])
    both = pd.concat(jobs, keys=range(len(jobs)), names=["job", "row"]).reset_index(level="job")
    common = both.groupby("epoch").job.nunique() == len(jobs)
    both = both[both.epoch.isin(common[common].index)]
    out = {}
    for split in ("val", "test"):
        weighted = (both[split] * both[f"{split}_n"]).groupby(both.epoch).sum()
        out[split] = weighted / both[f"{split}_n"].groupby(both.epoch).sum().replace(0, np.nan)
    return pd.DataFrame(out).rename_axis("epoch").reset_index()


def children_of(client, parents: list[str], experiment_ids: list[str]) -> dict[str, list[str]]:
    """parent run id -> its group job run ids (tag mlflow.parentRunId), from one search of the job runs."""
    found: dict[str, list[str]] = {p: [] for p in parents}
    for run in search_all(client, experiment_ids, "tags.`mtlv.role` = 'job'"):
        parent = run.data.tags.get("mlflow.parentRunId")
        if parent in found:
            found[parent].append(run.info.run_id)
    return found


def result_curves(uri: str, runs: pd.DataFrame, criterion: str = "val_f1_macro") -> pd.DataFrame:
    """Per-epoch curves of the results the tables show (GMHL/GMTL at their chosen setting): columns
    arch, model, fold, seed, epoch, val, test."""
    client = tracking.read_client(uri)
    shown = pd.concat([chosen(runs, arch, model, criterion)[0] for arch in ARCHS if arch in set(runs.arch)
                       for model in model_order(runs[runs.arch == arch].model)] or [runs.iloc[:0]])
    parents = list(shown.run_id[shown.role == "parent"])
    experiments = [e.experiment_id for e in tracking.retry_locked(client.search_experiments)()]
    children = children_of(client, parents, experiments) if parents else {}
    frames = []
    for _, row in shown.iterrows():
        if row.role == "parent":
            curve = cell_curve([job_curve(client, c) for c in children.get(row.run_id, [])])
        else:
            curve = job_curve(client, row.run_id)[["epoch", "val", "test"]]
        if not curve.empty:
            frames.append(curve.assign(arch=row.arch, model=row.model, fold=row.fold, seed=row.seed))
    columns = ["arch", "model", "fold", "seed", "epoch", "val", "test"]
    return pd.concat(frames)[columns].reset_index(drop=True) if frames else pd.DataFrame(columns=columns)


def mean_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """arch, model, epoch -> mean and std of val and test F1-macro over (fold, seed), and n."""
    if curves.empty:
        return pd.DataFrame(columns=["arch", "model", "epoch", "val_mean", "val_std", "test_mean", "test_std", "n"])
    grouped = curves.groupby(["arch", "model", "epoch"])
    out = grouped.agg(val_mean=("val", "mean"), val_std=("val", "std"), test_mean=("test", "mean"),
                      test_std=("test", "std"), n=("test", "count"))
    return out.reset_index()


def advantage_sentence(means: pd.DataFrame, model: str) -> str | None:
    """Where (which epoch) GMTL's test F1-macro advantage over MTL appears or vanishes, from the curves."""
    per = {a: means[(means.arch == a) & (means.model == model)].set_index("epoch").test_mean for a in ("gmtl", "mtl")}
    diff = (per["gmtl"] - per["mtl"]).dropna()
    if diff.empty:
        return None
    epochs, last = list(diff.index), int(diff.index[-1])
    sign = np.sign(diff.round(4))
    text = (f"{model}: GMTL − MTL test F1-macro is {diff.iloc[0]:+.3f} after epoch {epochs[0]} and "
            f"{diff.iloc[-1]:+.3f} after epoch {last}")
    if (sign > 0).all():
        return text + f"; GMTL is ahead after every epoch (largest gap {diff.max():+.3f}, epoch {int(diff.idxmax())})."
    if (sign <= 0).all():
        return text + "; GMTL is never ahead of MTL."
    changes = [int(e) for e, before, now in zip(epochs[1:], sign.iloc[:-1], sign.iloc[1:]) if (before > 0) != (now > 0)]
    events = [f"{'appears' if sign[e] > 0 else 'vanishes'} at epoch {e}" for e in changes]
    if sign.iloc[0] > 0:
        events.insert(0, f"holds from epoch {epochs[0]}")
    return text + f"; GMTL's advantage {', '.join(events)}."
