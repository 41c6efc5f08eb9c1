"""Summaries over cross-validation folds (and repeats), best clustering setting, paired Wilcoxon tests.

A sample is one (fold, seed) pair: the folds of one seed share the split, so two architectures are
compared on identical test documents, and differences are paired by (fold, seed).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

PAIR = ["fold", "seed"]
ALPHA = 0.05


def summarize(values) -> dict:
    """mean, sample standard deviation (ddof=1; NaN for one value) and n of the finite values."""
    arr = np.asarray(pd.Series(values, dtype=float).dropna(), dtype=float)
    n = len(arr)
    return {"mean": float(arr.mean()) if n else np.nan, "std": float(arr.std(ddof=1)) if n > 1 else np.nan, "n": n}


def setting_scores(runs: pd.DataFrame, criterion: str = "val_f1_macro") -> pd.DataFrame:
    """Mean criterion per clustering setting (columns: setting, feature, k, score, n)."""
    if runs.empty:
        return pd.DataFrame(columns=["setting", "feature", "k", "score", "n"])
    # Only the criterion itself: runs without validation metrics are never ranked by their test score
    # (a setting none of whose runs has one gets no score; `unranked` names them for the report).
    scores = runs.groupby("setting", dropna=False).agg(feature=("feature", "first"), k=("k", "first"),
                                                       score=(criterion, "mean"), n=(criterion, "count"))
    return scores.reset_index()


def unranked(runs: pd.DataFrame, criterion: str = "val_f1_macro") -> list[str]:
    """'arch/model: setting (n of m runs)' for each clustering setting with runs lacking the criterion."""
    out = []
    for (arch, model, setting), group in runs.groupby(["arch", "model", "setting"]):
        missing = int(group[criterion].isna().sum())
        if setting and missing:
            out.append(f"{arch}/{model}: {setting} ({missing} of {len(group)} runs)")
    return out


def shared_samples(runs: pd.DataFrame, criterion: str = "val_f1_macro") -> pd.DataFrame:
    """The runs of the (fold, seed) samples that every setting has a criterion value for. A grid stopped
    part-way (a device's time limit, a cancelled sweep) leaves some settings with fewer folds; their mean
    is over other documents, and one lucky fold would otherwise outrank four. No sample in common (or no
    fold/seed columns): the runs as they are."""
    if runs.empty or not set(PAIR) <= set(runs.columns):
        return runs
    samples = pd.Series(list(runs[PAIR].astype(object).fillna(-1).itertuples(index=False, name=None)),
                        index=runs.index)
    ranked = runs[criterion].notna()
    per_setting = samples[ranked].groupby(runs.setting.fillna("")[ranked]).agg(set)
    if per_setting.empty:
        return runs
    common = set.intersection(*per_setting)
    if not common or all(s == common for s in per_setting):
        return runs
    return runs[samples.map(common.__contains__)]


def best_setting(runs: pd.DataFrame, criterion: str = "val_f1_macro") -> str | None:
    """The clustering setting with the highest mean criterion over the samples all settings share
    (`shared_samples`); ties go to the smaller k, then by name, so the choice never depends on the order
    runs come back from the store."""
    scores = setting_scores(shared_samples(runs, criterion), criterion).dropna(subset=["score"])
    if scores.empty:
        return None
    scores = scores.assign(k_sort=scores["k"].fillna(np.inf))
    return str(scores.sort_values(["score", "k_sort", "setting"], ascending=[False, True, True]).iloc[0]["setting"])


def paired(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows (fold, seed) present in both a and b, with columns a and b holding `metric`."""
    left = a[PAIR + [metric]].rename(columns={metric: "a"})
    right = b[PAIR + [metric]].rename(columns={metric: "b"})
    both = left.merge(right, on=PAIR, how="inner").dropna(subset=["a", "b"])
    return both.sort_values(PAIR).reset_index(drop=True)


def min_two_sided_p(n_nonzero: int) -> float:
    """Smallest two-sided p the signed-rank test can give with n non-zero differences: scipy's p when all
    of them share one sign (2 / 2**n for the exact test). Zero differences are dropped by scipy's default
    zero_method, so they never count towards n."""
    if n_nonzero <= 0:
        return 1.0
    return float(stats.wilcoxon(np.arange(1.0, n_nonzero + 1)).pvalue)


def wilcoxon(x, y) -> dict:
    """Two-sided Wilcoxon signed-rank test of x - y (scipy's default method: exact for n <= 50 without
    ties; pairs with a zero difference are dropped). Returns n (pairs), n_nonzero, statistic, pvalue,
    min_p (the smallest p these n_nonzero pairs could give), can_reach (min_p < ALPHA) and a note."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    n_nonzero = int(np.count_nonzero(x - y)) if n else 0
    min_p = min_two_sided_p(n_nonzero)
    out = {"n": n, "n_nonzero": n_nonzero, "statistic": np.nan, "pvalue": np.nan, "min_p": min_p,
           "can_reach": bool(min_p < ALPHA), "note": ""}
    if n == 0:
        out["note"] = "no paired runs"
        return out
    if n_nonzero == 0:
        out.update(pvalue=1.0, note="identical results in every pair")
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy warns on tiny samples; the note says it better
        res = stats.wilcoxon(x, y)
    out.update(statistic=float(res.statistic), pvalue=float(res.pvalue))
    ties = f" ({n - n_nonzero} tied pair(s) dropped)" if n_nonzero < n else ""
    if not out["can_reach"]:
        out["note"] = (f"⚠ n={n_nonzero} non-zero differences{ties}: p can never fall below {ALPHA} (smallest "
                       f"possible p = {min_p:.3g}); add folds or repeats (seeds)")
    elif res.pvalue < ALPHA:
        out["note"] = f"significant at {ALPHA}{ties}"
    else:
        out["note"] = f"not significant at {ALPHA}{ties}"
    return out
