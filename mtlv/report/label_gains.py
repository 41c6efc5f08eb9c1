"""Table 9: which labels gain or lose test F1 under each architecture (at its chosen setting) compared with
STL of the same model: the mean per-label difference over the (fold, seed) samples both have. A label
without test positives in a sample has no F1 there (it is not logged) and that sample does not count for it.
Read from the runs' `test/f1/<label>` metrics (no artifact)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtlv.report.render import DASH, Table, fmt
from mtlv.report.stats import PAIR
from mtlv.report.study_tables import ARCHS, chosen, criterion_text, model_order, setting_label


def _per_label(labels: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """fold, seed, label, f1 of the given runs."""
    return labels.merge(rows[["run_id", *PAIR]], on="run_id")[[*PAIR, "label", "f1"]]


def gains(runs: pd.DataFrame, labels: pd.DataFrame, criterion: str = "val_f1_macro") -> pd.DataFrame:
    """model, arch, setting, column (its table heading), label, stl (mean STL F1), diff (mean arch − STL), n."""
    out = []
    for model in model_order(runs.model[runs.arch == "stl"]):
        stl = _per_label(labels, runs[(runs.arch == "stl") & (runs.model == model)])
        for arch in [a for a in ARCHS[1:] if ((runs.arch == a) & (runs.model == model)).any()]:
            rows, setting = chosen(runs, arch, model, criterion)
            both = _per_label(labels, rows).merge(stl, on=[*PAIR, "label"], suffixes=("", "_stl"))
            if both.empty:
                continue
            column = f"{arch.upper()} {model}" + (f" ({setting_label(setting)})" if setting else "")
            for label, group in both.groupby("label", sort=False):
                out.append({"model": model, "arch": arch, "setting": setting, "column": column, "label": label,
                            "stl": group.f1_stl.mean(), "diff": (group.f1 - group.f1_stl).mean(), "n": len(group)})
    return pd.DataFrame(out, columns=["model", "arch", "setting", "column", "label", "stl", "diff", "n"])


def gains_matrix(raw: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """label x column of mean differences (for the heat map), labels in `order`."""
    matrix = raw.pivot_table(index="label", columns="column", values="diff", aggfunc="first", sort=False)
    return matrix.reindex([label for label in order if label in matrix.index])


def label_gains_table(runs: pd.DataFrame, labels: pd.DataFrame, dataset: str, criterion: str = "val_f1_macro",
                      label_order: list[str] | None = None) -> Table | None:
    """None when there is no STL result with per-label F1 to compare with."""
    raw = gains(runs, labels, criterion)
    if raw.empty:
        return None
    order = list(label_order or []) + sorted(set(raw.label) - set(label_order or []))
    order = [label for label in order if label in set(raw.label)]
    shown = {"Label": order}
    for model in model_order(raw.model):
        stl = raw[raw.model == model].groupby("label").stl.first()
        shown[f"STL {model} F1"] = [fmt(stl.get(label, np.nan)) for label in order]
        for column, group in raw[raw.model == model].groupby("column", sort=False):
            diff = group.set_index("label")["diff"]
            shown[f"Δ {column}"] = [f"{100 * diff[label]:+.1f}" if label in diff and np.isfinite(diff[label])
                                    else DASH for label in order]
    frame = pd.DataFrame(shown)
    bold = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    summary = []
    for column, group in raw.groupby("column", sort=False):
        diff = group.set_index("label")["diff"].reindex(order)
        bold[f"Δ {column}"] = (diff > 0).to_numpy()
        summary.append(f"{column}: gains on {int((diff > 0).sum())}, loses on {int((diff < 0).sum())} of "
                       f"{int(diff.notna().sum())} labels (mean {100 * diff.mean():+.2f} points)")
    notes = ["Test F1 per label: STL's mean, and each architecture's mean difference to STL in F1 points over the "
             "(fold, seed) samples both have (bold: a gain). GMHL/GMTL at the setting chosen by mean "
             f"{criterion_text(criterion)}.", *[f"- {line}" for line in summary]]
    return Table("table9_label_gains", dataset, f"Table 9 ({dataset}): per-label gains and losses vs STL",
                 frame, raw, bold, notes)
