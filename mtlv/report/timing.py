"""Table 5: wall-clock per architecture x model, and how much longer one model per label (STL) takes
than one model per group (GMTL) -- the cost argument of the reference study.

wall-clock: `time/elapsed_s` of a result (for STL/GMTL: first group job start to last group job end, so
parallel launchers shorten it); compute: `time/sum_job_s` (the group jobs' times added up; = wall-clock
for single-job architectures). Both are per (fold, seed) result and include evaluation.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtlv.report.reference import Reference
from mtlv.report.stats import summarize
from mtlv.report.render import DASH, Table, fmt
from mtlv.report.study_tables import arch_order, chosen, model_order, reference_notes, setting_label


def ratio(a: float, b: float) -> float:
    return a / b if np.isfinite(a) and np.isfinite(b) and b > 0 else np.nan


def time_table(runs: pd.DataFrame, dataset: str, ref: Reference, criterion: str = "val_f1_macro") -> Table:
    raw = []
    for arch in arch_order(runs.arch):
        for model in model_order(runs[runs.arch == arch].model):
            rows, setting = chosen(runs, arch, model, criterion)
            wall, compute = summarize(rows.elapsed_s), summarize(rows.compute_s)
            raw.append({"dataset": dataset, "arch": arch, "model": model, "setting": setting, "n": wall["n"],
                        "wall_mean_s": wall["mean"], "wall_std_s": wall["std"], "compute_mean_s": compute["mean"],
                        "all_folds_s": rows.groupby("seed", dropna=False).elapsed_s.sum(min_count=1).mean()
                        if len(rows) else np.nan,
                        "wall_ref_s": ref.value(5, dataset, arch, model, "elapsed_s")})
    raw = pd.DataFrame(raw, columns=["dataset", "arch", "model", "setting", "n", "wall_mean_s", "wall_std_s",
                                     "compute_mean_s", "all_folds_s", "wall_ref_s"])
    for model in model_order(raw.model):
        stl, gmtl = (raw[(raw.arch == a) & (raw.model == model)] for a in ("stl", "gmtl"))
        if len(stl) and len(gmtl):
            raw.loc[len(raw)] = {"dataset": dataset, "arch": "stl/gmtl", "model": model, "setting": "ratio",
                                 "n": np.nan, "wall_mean_s": ratio(stl.wall_mean_s.iloc[0], gmtl.wall_mean_s.iloc[0]),
                                 "wall_std_s": np.nan,
                                 "compute_mean_s": ratio(stl.compute_mean_s.iloc[0], gmtl.compute_mean_s.iloc[0]),
                                 "all_folds_s": np.nan, "wall_ref_s": None}
    is_ratio = raw.arch == "stl/gmtl"
    frame = pd.DataFrame({
        "Architecture": np.where(is_ratio, "STL / GMTL", raw.arch), "Model": raw.model,
        "Setting": [DASH if r else setting_label(s) for r, s in zip(is_ratio, raw.setting)],
        "Wall-clock (s)": [f"{w:.2f}×" if r and np.isfinite(w) else (DASH if r else fmt(w, s, 1))
                           for r, w, s in zip(is_ratio, raw.wall_mean_s, raw.wall_std_s)],
        "Compute (s)": [f"{c:.2f}×" if r and np.isfinite(c) else (DASH if r else fmt(c, np.nan, 1))
                        for r, c in zip(is_ratio, raw.compute_mean_s)],
        "n": ["" if r else str(int(n)) for r, n in zip(is_ratio, raw.n)]})
    if raw.wall_ref_s.notna().any():
        frame["All folds (s)"] = [DASH if r else fmt(a, np.nan, 1) for r, a in zip(is_ratio, raw.all_folds_s)]
        frame["All folds (ref, s)"] = [fmt(v, np.nan, 1) if v is not None and np.isfinite(v) else DASH
                                       for v in raw.wall_ref_s]
        frame["ours / ref"] = [f"{ratio(a, v):.2f}×" if v is not None and np.isfinite(ratio(a, v)) else DASH
                               for a, v in zip(raw.all_folds_s, raw.wall_ref_s)]
    notes = ["Seconds per (fold, seed) result, mean ± std, training and evaluation included; GMHL/GMTL at their "
             "chosen setting. STL / GMTL: how many times longer one model per label takes than one model per group. "
             "Times depend on the hardware and on the launcher (parallel group jobs shorten wall-clock, not compute)."]
    if raw.wall_ref_s.notna().any():
        notes += reference_notes(ref, dataset, raw.model[~is_ratio], "All folds: wall-clock of every fold of one "
                                 "configuration added up (mean over seeds); (ref): the same as published (Table 4.9: "
                                 "one V100, no std printed). Different hardware: compare ratios, not seconds.")
    return Table("table5_wallclock", dataset, f"Table 5 ({dataset}): wall-clock", frame, raw, None, notes)
