"""Table 8: every setting against STL and against MTL of its model, two-sided Wilcoxon signed-rank tests of
test F1-macro paired by (fold, seed) (exact up to 25 pairs, ties and zeros included: stats.wilcoxon), with the
Holm correction across all the comparisons of the section (a grid of 40 settings makes 80 tests: at 0.05 a few
would look significant by chance alone). The table starts with whether any of them can be significant at all
(power.py), and marks every row that cannot, whatever the data."""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtlv.report.render import DASH, Table
from mtlv.report.settings import with_ids
from mtlv.report.power import Power, reachable
from mtlv.report.stats import ALPHA, holm, paired, wilcoxon
from mtlv.report.study_tables import is_baseline, model_order

ANCHORS = ("stl", "mtl")


def comparisons(runs: pd.DataFrame, metric: str = "f1_macro") -> pd.DataFrame:
    """One row per (setting, anchor) of the same model: n, n_nonzero, means, mean_diff (setting − anchor),
    statistic, pvalue, min_p, can_reach, holm_p. MTL against STL is one row (under STL)."""
    runs = with_ids(runs[~runs.arch.map(is_baseline)])
    rows = []
    for model in model_order(runs.model):
        mine = runs[runs.model == model]
        anchors = {a: mine[mine.arch == a] for a in ANCHORS if (mine.arch == a).any()}
        for sid, group in mine.groupby("sid", sort=False):
            for anchor, base in anchors.items():
                arch = group.arch.iloc[0]
                if arch == anchor or (anchor == "mtl" and arch == "stl"):
                    continue
                pairs = paired(group, base, metric)
                test = wilcoxon(pairs.a, pairs.b)
                rows.append({"model": model, "arch": arch, "setting": group.setting.iloc[0],
                             "name": group.name.iloc[0], "against": anchor, "n": test["n"],
                             "n_nonzero": test["n_nonzero"],
                             "mean": pairs.a.mean() if len(pairs) else np.nan,
                             "anchor_mean": pairs.b.mean() if len(pairs) else np.nan,
                             "mean_diff": (pairs.a - pairs.b).mean() if len(pairs) else np.nan,
                             "statistic": test["statistic"], "pvalue": test["pvalue"],
                             "min_p": test["min_p"], "can_reach": test["can_reach"]})
    raw = pd.DataFrame(rows, columns=["model", "arch", "setting", "name", "against", "n", "n_nonzero", "mean",
                                      "anchor_mean", "mean_diff", "statistic", "pvalue", "min_p", "can_reach"])
    raw["holm_p"] = holm(raw.pvalue)
    # a row can be significant only if, with every test of the family at its smallest possible p, Holm passes it
    raw["can_reach_holm"] = reachable(pd.to_numeric(raw.min_p).where(np.isfinite(pd.to_numeric(raw.pvalue))))
    return raw


def _note(row) -> str:
    if row.n == 0:
        return "they share 0 (fold, seed) samples: not tested"
    if row.n_nonzero == 0:
        return "identical in every pair"
    if not row.can_reach:
        return f"⚠ cannot reach p < {ALPHA}: n={row.n_nonzero} gives p ≥ {row.min_p:.3g}"
    if not row.can_reach_holm:
        return f"⚠ cannot reach p < {ALPHA} after Holm with these tests"
    return f"significant after Holm (α = {ALPHA})" if row.holm_p < ALPHA else "not significant after Holm"


def section_power(runs: pd.DataFrame, raw: pd.DataFrame | None = None) -> Power | None:
    """The power of a section's tests (`raw`: its comparisons, computed when None): the pairs of its fullest
    comparison, the number of tests, the folds (for how to get more samples). None without a test."""
    raw = comparisons(runs) if raw is None else raw
    tested = raw[np.isfinite(pd.to_numeric(raw.pvalue))]
    folds = int(pd.to_numeric(runs.folds, errors="coerce").max() or 0) if len(runs) else 0
    return Power(int(tested.n.max()), len(tested), folds) if len(tested) else None


def significance_table(runs: pd.DataFrame, dataset: str) -> Table | None:
    """None when the section has neither STL nor MTL to compare with."""
    raw = comparisons(runs)
    if raw.empty:
        return None
    frame = pd.DataFrame({
        "Setting": raw.name, "Against": raw.against.str.upper(),
        "n": [f"{n} ({z} ≠ 0)" if z != n else str(n) for n, z in zip(raw.n, raw.n_nonzero)],
        "Mean Δ (points)": [f"{100 * d:+.2f}" if np.isfinite(d) else DASH for d in raw.mean_diff],
        "p": [f"{p:.4f}" if np.isfinite(p) else DASH for p in raw.pvalue],
        "Holm p": [f"{p:.4f}" if np.isfinite(p) else DASH for p in raw.holm_p],
        "min p": [f"{p:.3g}" for p in raw.min_p], "Note": [_note(r) for r in raw.itertuples()]})
    bold = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    bold.loc[(raw.holm_p < ALPHA).to_numpy(), "Holm p"] = True
    tested = int(np.isfinite(raw.pvalue).sum())
    power = section_power(runs, raw)
    notes = ([power.sentence()] if power else []) + [
        "Test F1-macro of each setting against STL and MTL of the same model, paired by (fold, seed): mean "
        "difference (setting − anchor) in F1 points, two-sided Wilcoxon signed-rank p (pairs with a zero difference "
        "are dropped, n ≠ 0 counts the rest; exact up to 25 pairs, with ties and zeros, by enumerating all sign "
        f"flips; scipy.stats.wilcoxon above) and the Holm-adjusted p across the {tested} tests of this section "
        f"(bold: below {ALPHA}). min p: the smallest p those pairs could give; ⚠: this row cannot reach p < "
        f"{ALPHA}, alone or after Holm, whatever the data: add folds or seeds."]
    return Table("table8_significance", dataset, f"Table 8 ({dataset}): every setting vs STL and MTL "
                 "(Wilcoxon, Holm)", frame, raw, bold, notes)
