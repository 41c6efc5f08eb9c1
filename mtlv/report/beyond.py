"""The beyond-the-thesis table (docs/grouping.md): GMTL and GMHL F1-macro for every task feature x clusterer
at k = 3, 4, 5 and auto, GMHL with each loss weighting, beside MTL and STL on the same (fold, seed) samples,
and what it says in plain words: which grouping method wins and by how much.

Nothing is chosen on test: where a sentence compares "the best" of a family, the setting is the one with the
best mean validation F1-macro (the report's criterion), and its test F1-macro is what is compared.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtlv.report.render import DASH, Table, fmt
from mtlv.report.stats import best_setting, paired, summarize
from mtlv.report.study_tables import MIXED, MIXED_NOTE, criterion_text, labels_differ, model_order

FEATURES = ["label", "description", "cooccurrence", "affinity"]  # the first two: the reference study's
DATA_DRIVEN = ("cooccurrence", "affinity")
KS = ["3", "4", "5", "auto"]


def is_beyond(runs: pd.DataFrame) -> pd.Series:
    """Results only the beyond grid has: a data-driven feature, another clusterer, k=auto or a weighting."""
    return (runs.feature.isin(DATA_DRIVEN) | (runs.algorithm.fillna("kmedoids") != "kmedoids")
            | (runs.k_requested.astype(str) == "auto") | (runs.weighting.fillna("") != ""))


def _cell(rows: pd.DataFrame, full: int, with_k: bool = False) -> str:
    """mean ± std; `(n=2)` where the cell has fewer samples than the table's fullest cell (`full`)."""
    s = summarize(rows.f1_macro)
    if not s["n"]:
        return DASH
    text = fmt(s["mean"], s["std"]) + (f" {MIXED}" if labels_differ(rows) else "")
    if with_k:  # k=auto: which k the knee chose, per sample
        ks = sorted(int(k) for k in rows.k.dropna())
        text += f" (k: {','.join(map(str, ks))})"
    if s["n"] < full:
        text += f" (n={s['n']})"
    return text


def _family_pick(rows: pd.DataFrame, criterion: str) -> tuple[str | None, pd.DataFrame]:
    setting = best_setting(rows, criterion)
    return setting, rows[rows.setting == setting] if setting else rows.iloc[0:0]


def _compare(a: pd.DataFrame, b: pd.DataFrame) -> tuple[float, int, int]:
    """(mean test difference a - b over shared samples, samples where a > b, shared samples)."""
    both = paired(a, b, "f1_macro")
    if both.empty:
        return np.nan, 0, 0
    diff = both.a - both.b
    return float(diff.mean()), int((diff > 0).sum()), len(both)


def verdicts(runs: pd.DataFrame, criterion: str) -> list[str]:
    """Plain sentences: data-driven vs name/description GMTL per k, GMHL weightings vs MTL, per model (an
    encoder with MLP heads is another model: its GMHL is compared with its own MTL)."""
    models = model_order(runs.model[runs.model != "-"])
    return [f"{model}: {v}" if len(models) > 1 else v
            for model in models for v in _verdicts(runs[runs.model == model], criterion)]


def _verdicts(runs: pd.DataFrame, criterion: str) -> list[str]:
    out = []
    gmtl = runs[(runs.arch == "gmtl") & (runs.weighting.fillna("") == "")]
    for k in KS:
        at_k = gmtl[gmtl.k_requested.astype(str) == k]
        learned, _ = at_k[at_k.feature.isin(DATA_DRIVEN)], None
        named = at_k[at_k.feature.isin(["label", "description"])]
        if learned.empty or named.empty:
            continue
        (s_l, r_l), (s_n, r_n) = _family_pick(learned, criterion), _family_pick(named, criterion)
        if not s_l or not s_n:
            continue
        diff, wins, n = _compare(r_l, r_n)
        verb = "beats" if diff > 0 else "does not beat"
        out.append(f"GMTL, k={k}: the data-driven grouping chosen on validation ({s_l}) {verb} the name/description "
                   f"one chosen the same way ({s_n}): {diff * 100:+.2f} F1-macro points on test "
                   f"(higher in {wins} of {n} samples).")
    mtl = runs[runs.arch == "mtl"]
    gmhl = runs[runs.arch == "gmhl"]
    if not mtl.empty and not gmhl.empty:
        for weighting, rows in gmhl.groupby(gmhl.weighting.fillna("").replace("", "the summed loss (no weighting option)")):
            setting, picked = _family_pick(rows, criterion)
            if setting:
                diff, wins, n = _compare(picked, mtl)
                gap = "within 1 point of" if abs(diff) <= 0.01 else ("above" if diff > 0 else "below")
                out.append(f"GMHL with {weighting} ({setting}, chosen on validation) is {gap} MTL: "
                           f"{diff * 100:+.2f} points (higher in {wins} of {n} samples).")
    return out


def beyond_table(runs: pd.DataFrame, dataset: str, criterion: str = "val_f1_macro") -> Table | None:
    """None when the store holds no beyond-the-thesis result for this dataset."""
    if runs.empty or not is_beyond(runs[runs.arch.isin(["gmhl", "gmtl"])]).any():
        return None
    shown, raw = [], []
    # A grid stopped part-way leaves cells with fewer (fold, seed) samples: they say so, not just a mean.
    counts = runs.assign(setting=runs.setting.fillna("")).groupby(["arch", "model", "setting"]).f1_macro.count()
    full = int(counts.max())
    for model in model_order(runs.model[runs.model != "-"]):
        mine = runs[runs.model == model]
        for arch in ("stl", "mtl"):
            rows = mine[mine.arch == arch]
            if not rows.empty:
                shown.append({"Architecture": arch, "Model": model, "Grouping": "(none)", "Weighting": DASH,
                              **{f"k={k}": DASH for k in KS}, "No grouping": _cell(rows, full)})
                raw.append({"arch": arch, "model": model, "setting": "", **summarize(rows.f1_macro)})
        for arch in ("gmtl", "gmhl"):
            rows = mine[mine.arch == arch]
            combos = rows[["feature", "algorithm", "weighting"]].fillna("").drop_duplicates()
            order = {f: i for i, f in enumerate(FEATURES)}
            combos = combos.assign(o=combos.feature.map(lambda f: order.get(f, len(order)))).sort_values(
                ["weighting", "o", "feature", "algorithm"])
            for _, c in combos.iterrows():
                group = rows[(rows.feature.fillna("") == c.feature) & (rows.algorithm.fillna("") == c.algorithm)
                             & (rows.weighting.fillna("") == c.weighting)]
                row = {"Architecture": arch, "Model": model, "Grouping": f"{c.feature}, {c.algorithm}",
                       "Weighting": c.weighting or ("sum" if arch == "gmhl" else DASH)}
                for k in KS:
                    at_k = group[group.k_requested.astype(str) == k]
                    row[f"k={k}"] = _cell(at_k, full, with_k=(k == "auto"))
                    if not at_k.empty:
                        raw.append({"arch": arch, "model": model, "setting": at_k.setting.iloc[0],
                                    **summarize(at_k.f1_macro), "val_mean": summarize(at_k.val_f1_macro)["mean"]})
                row["No grouping"] = DASH
                shown.append(row)
    frame = pd.DataFrame(shown)
    notes = ["Test F1-macro, mean ± std over (fold, seed) samples; k=auto: the knee of the elbow curve per "
             "sample (silhouette where there is none), with the k each sample chose. GMHL without a `weighting` "
             "sums the heads' losses (the reference's loss). Groupings are computed on each fold's training "
             "documents only."]
    if counts.min() < full:
        notes.append(f"(n=…): a cell with fewer (fold, seed) samples than the fullest ({full}): the grid stopped "
                     "before it finished; its mean is over those samples only.")
    notes += [f"Comparisons choose each family's setting by mean {criterion_text(criterion)} over the samples "
              "its settings share, never on test:"]
    notes += [f"- {v}" for v in verdicts(runs, criterion)]
    if runs.pipe(labels_differ):
        notes.append(MIXED_NOTE)
    return Table("table6_beyond", dataset, f"Table 6 ({dataset}): task groupings learned from the data "
                 "(beyond the thesis)", frame, pd.DataFrame(raw), None, notes)
