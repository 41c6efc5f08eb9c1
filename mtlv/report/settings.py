"""One row per *setting* of a report section: an architecture x model x grouping setting, or a classical
baseline, with what it costs and what it scores. The cost table (cost.py), the Pareto frontier and the
recommendation (recommend.py) read it.

Cost per result (one (fold, seed) sample): `trainings`, the models trained (STL: one per label, GMTL: one per
group, MTL/GMHL: one); `trainable_params`, summed over those models (unknown, NaN, where a run did not record
it: never guessed); `compute_s`, the jobs' seconds added up (a parallel launcher does not shorten it; a job
that reused another's model counts that model's training time, so cells compare whatever was reused).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtlv.report.stats import summarize
from mtlv.report.study_tables import arch_order, is_baseline, model_order, setting_label

ID = ["arch", "model", "setting"]


def setting_name(arch: str, model: str, setting: str) -> str:
    """'GMTL minilm (description, k=3)', 'MTL minilm', 'baseline-tfidf-logreg': how sentences name a setting."""
    if is_baseline(arch):
        return str(arch)
    text = f"{str(arch).upper()} {model}"
    return f"{text} ({setting_label(setting)})" if setting else text


def with_ids(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs with `sid`, one string per setting (arch|model|setting), and `name` (setting_name)."""
    setting = runs.setting.fillna("").astype(str)
    return runs.assign(sid=runs.arch.astype(str) + "|" + runs.model.astype(str) + "|" + setting,
                       name=[setting_name(a, m, s) for a, m, s in zip(runs.arch, runs.model, setting)])


def _all_or_nan(values: pd.Series) -> float:
    """The mean when every run has a value, NaN otherwise: a partly recorded count is not shown."""
    values = pd.to_numeric(values, errors="coerce")
    return float(values.mean()) if len(values) and values.notna().all() else np.nan


def settings_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """arch, model, setting, sid, name, baseline, n, trainings, trainable_params, compute_s (means per result),
    f1_macro, f1_macro_std, val_f1_macro (means over the setting's samples); in report order."""
    columns = ID + ["sid", "name", "baseline", "n", "missing", "trainings", "trainable_params", "compute_s",
                    "f1_macro", "f1_macro_std", "val_f1_macro"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    runs = with_ids(runs)
    section = missing_samples(runs)
    for arch in arch_order(runs.arch):
        mine = runs[runs.arch == arch]
        for model in model_order(mine.model):
            sub = mine[mine.model == model]
            for setting, group in sub.groupby(sub.setting.fillna(""), sort=True):
                test = summarize(group.f1_macro)
                rows.append({"arch": arch, "model": model, "setting": setting, "sid": group.sid.iloc[0],
                             "name": group.name.iloc[0], "baseline": is_baseline(arch), "n": test["n"],
                             "missing": section.get(group.sid.iloc[0], 0),
                             "trainings": _all_or_nan(group.trainings),
                             "trainable_params": _all_or_nan(group.trainable_params),
                             "compute_s": float(group.compute_s.mean()), "f1_macro": test["mean"],
                             "f1_macro_std": test["std"], "val_f1_macro": float(group.val_f1_macro.mean())})
    return pd.DataFrame(rows, columns=columns)


def missing_samples(runs: pd.DataFrame) -> dict[str, int]:
    """sid -> how many of the section's (fold, seed) samples (those any setting has a test result for) the
    setting lacks: failed or missing jobs, marked wherever the setting appears."""
    done = runs[runs.f1_macro.notna()] if "f1_macro" in runs else runs
    if done.empty or not {"fold", "seed"} <= set(done.columns):
        return {}
    keys = done.fold.astype(str) + "|" + done.seed.astype(str)
    total = keys.nunique()
    return {sid: total - n for sid, n in keys.groupby(done.sid).nunique().items() if n < total}


def pareto(costs, scores) -> np.ndarray:
    """Which points are on the Pareto frontier of (cost: lower is better, score: higher is better): no other
    point costs no more and scores no less while being better in one of the two. Points with an unknown cost
    or score are never on it."""
    cost, score = np.asarray(costs, dtype=float), np.asarray(scores, dtype=float)
    known = np.isfinite(cost) & np.isfinite(score)
    front = known.copy()
    for i in np.flatnonzero(known):
        others = known & (cost <= cost[i]) & (score >= score[i]) & ((cost < cost[i]) | (score > score[i]))
        front[i] = not others.any()
    return front


def fmt_count(value: float) -> str:
    """1, 19, 3.5 (a mean over samples that chose different k), or — when unknown."""
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def fmt_params(value: float) -> str:
    """22.7M, 998k, 860; — when unknown."""
    if value is None or not np.isfinite(value):
        return "—"
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.{1 if value < 100 * scale else 0}f}{unit}"
    return f"{value:.0f}"
