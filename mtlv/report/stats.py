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


def unranked(runs: pd.DataFrame, criterion: str = "val_f1_macro") -> list[str]:
    """'arch/model: setting (n of m runs)' for each clustering setting with runs lacking the criterion."""
    out = []
    for (arch, model, setting), group in runs.groupby(["arch", "model", "setting"]):
        missing = int(group[criterion].isna().sum())
        if setting and missing:
            out.append(f"{arch}/{model}: {setting} ({missing} of {len(group)} runs)")
    return out


def best_setting(runs: pd.DataFrame, criterion: str = "val_f1_macro") -> str | None:
    """The clustering setting with the highest mean criterion (to 9 digits) among the settings with the most
    (fold, seed) samples: a grid stopped part-way leaves some settings with fewer folds, and one lucky fold
    must not outrank four (the report marks them). Ties go to fewer models trained, fewer trained parameters,
    the smaller k, then the name: the recommendation's order (recommend.rank_key), never measured time, and
    never the order runs come back from the store."""
    ranked = runs[runs[criterion].notna()] if len(runs) else runs
    if ranked.empty:
        return None
    setting = ranked.setting.fillna("")
    samples = (ranked[PAIR].astype(str).agg("|".join, axis=1) if set(PAIR) <= set(ranked.columns)
               else pd.Series("", index=ranked.index))  # no samples recorded: every setting counts as complete
    by = ranked.assign(setting=setting, sample=samples).groupby("setting")

    def mean_of(column: str) -> pd.Series:
        values = pd.to_numeric(ranked[column], errors="coerce") if column in ranked else pd.Series(np.nan, ranked.index)
        return values.groupby(setting).mean().fillna(np.inf)

    table = pd.DataFrame({"n": by["sample"].nunique(), "score": -by[criterion].mean().round(9),
                          "trainings": mean_of("trainings"), "params": mean_of("trainable_params"),
                          "k": mean_of("k")})
    table = table[table.n == table.n.max()].reset_index()
    return str(table.sort_values(["score", "trainings", "params", "k", "setting"]).iloc[0]["setting"])


def paired(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows (fold, seed) present in both a and b, with columns a and b holding `metric`."""
    left = a[PAIR + [metric]].rename(columns={metric: "a"})
    right = b[PAIR + [metric]].rename(columns={metric: "b"})
    both = left.merge(right, on=PAIR, how="inner").dropna(subset=["a", "b"])
    return both.sort_values(PAIR).reset_index(drop=True)


def min_two_sided_p(n_nonzero: int) -> float:
    """Smallest two-sided p the signed-rank test can give with n non-zero differences: all of one sign is
    the only most extreme arrangement of the 2**n equally likely signs, so p = 2 / 2**n (capped at 1), with
    or without tied ranks. Zero differences are dropped (zero_method='wilcox'), so they never count in n."""
    return 1.0 if n_nonzero <= 0 else float(min(1.0, 2.0 / 2.0 ** n_nonzero))


EXACT_MAX = 25  # up to this many non-zero pairs the exact null distribution is enumerated, never approximated


def signed_rank_exact(d) -> tuple[float, float]:
    """(statistic, two-sided p) of the signed-rank test of the non-zero differences `d`, from the exact
    permutation distribution of the sum of positive (mid)ranks under all 2**n sign flips. Tied absolute
    values get midranks (multiples of 1/2, so twice the ranks are integers) and the distribution is counted
    by convolution over the ranks, not sampled: exact where scipy's method='exact' refuses ties and its
    default falls back to the normal approximation. p = 2 min(P(T <= t), P(T >= t)), capped at 1, as scipy's
    exact test (to which it is equal without ties)."""
    d = np.asarray(d, dtype=float)
    d = d[d != 0]
    ranks2 = np.rint(2 * stats.rankdata(np.abs(d))).astype(int)  # twice the midranks: integers
    counts = np.zeros(int(ranks2.sum()) + 1)
    counts[0] = 1.0
    for r in ranks2:  # each rank is either positive (adds r) or negative (adds 0), with probability 1/2
        counts[r:] = counts[r:] + counts[:-r]
    prob = counts / counts.sum()
    t2 = int(ranks2[d > 0].sum())
    p = 2 * min(prob[:t2 + 1].sum(), prob[t2:].sum())
    return t2 / 2, float(min(1.0, p))


def wilcoxon(x, y) -> dict:
    """Two-sided Wilcoxon signed-rank test of x - y; pairs with a zero difference are dropped. Up to
    EXACT_MAX non-zero pairs the p is exact (signed_rank_exact: equal to scipy's exact test without ties, and
    exact with ties too), so it never contradicts min_p; above, scipy's default. Returns n (pairs), n_nonzero,
    statistic (sum of the positive ranks of x - y, as scipy's two-sided), pvalue, method, min_p (the
    smallest p these n_nonzero pairs could give), can_reach (min_p < ALPHA) and a note."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    n_nonzero = int(np.count_nonzero(x - y)) if n else 0
    min_p = min_two_sided_p(n_nonzero)
    out = {"n": n, "n_nonzero": n_nonzero, "statistic": np.nan, "pvalue": np.nan, "method": "", "min_p": min_p,
           "can_reach": bool(min_p < ALPHA), "note": ""}
    if n == 0:
        out["note"] = "no paired runs"
        return out
    if n_nonzero == 0:
        out.update(pvalue=1.0, note="identical results in every pair")
        return out
    if n_nonzero <= EXACT_MAX:
        statistic, pvalue = signed_rank_exact(x - y)
        out.update(statistic=min(statistic, n_nonzero * (n_nonzero + 1) / 2 - statistic), pvalue=pvalue,
                   method="exact")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = stats.wilcoxon(x, y)
        out.update(statistic=float(res.statistic), pvalue=float(res.pvalue), method="scipy")
    ties = f" ({n - n_nonzero} tied pair(s) dropped)" if n_nonzero < n else ""
    if not out["can_reach"]:
        out["note"] = (f"⚠ n={n_nonzero} non-zero differences{ties}: p can never fall below {ALPHA} (smallest "
                       f"possible p = {min_p:.3g}); add folds or repeats (seeds)")
    elif out["pvalue"] < ALPHA:
        out["note"] = f"significant at {ALPHA}{ties}"
    else:
        out["note"] = f"not significant at {ALPHA}{ties}"
    return out


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input order: the i-th smallest of m p-values is multiplied by
    m - i + 1 (i from 1), made non-decreasing in that order, and capped at 1. NaN (no test) stays NaN and does
    not count in m."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    known = np.flatnonzero(np.isfinite(p))
    order = known[np.argsort(p[known], kind="stable")]
    m = len(order)
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled)) if m else scaled
    return out
