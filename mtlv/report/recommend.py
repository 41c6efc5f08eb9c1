"""The recommendation of a report section, written from its numbers: the setting chosen on validation, the
cheapest setting that validation cannot tell apart from it, what both cost against STL, and whether the study
is big enough for any difference to be significant. Nothing is chosen on test; test numbers are reported.

- Chosen: the encoder setting (architecture x model x grouping) with the highest mean validation F1-macro over
  the (fold, seed) samples all settings share (stats.shared_samples, as for tables 1-6); ties go to fewer
  trainings, then less compute, then the name. Its test F1-macro with a 95% Student t interval over its samples.
- Cheapest equivalent: among the settings whose mean validation F1-macro is within `tolerance` (1 point) of
  the chosen one on their paired samples, or that a paired two-sided Wilcoxon test of validation F1-macro does
  not separate from it (p >= 0.05, counted only where the pairs could give p < 0.05 at all), the one with the
  fewest trainings, then the least compute.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from mtlv.report.settings import fmt_count, fmt_params, settings_frame, with_ids
from mtlv.report.stats import ALPHA, PAIR, min_two_sided_p, paired, shared_samples, summarize, wilcoxon
from mtlv.report.study_tables import is_baseline

TOLERANCE = 0.01
VAL, TEST = "val_f1_macro", "f1_macro"


@dataclass
class Recommendation:
    section: str
    dataset: str
    tolerance: float = TOLERANCE
    alpha: float = ALPHA
    samples: int = 0                      # (fold, seed) samples every ranked setting shares
    settings: int = 0                     # encoder settings ranked on validation
    chosen: dict | None = None
    cheapest: dict | None = None
    stl: dict | None = None               # STL of the cheapest setting's model: the cost reference
    baseline: dict | None = None          # the best classical baseline on validation
    too_small: dict | None = None
    skipped: str | None = None            # why there is no recommendation
    sentences: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    def markdown(self) -> list[str]:
        lines = ["### Recommendation", ""]
        for sentence in self.sentences or [f"No recommendation: {self.skipped}"]:
            lines += [sentence, ""]
        return lines[:-1]


def interval(values) -> tuple[float, float] | None:
    """95% Student t interval of the mean; None for fewer than two values."""
    s = summarize(values)
    if s["n"] < 2:
        return None
    half = float(scipy_stats.t.ppf(0.975, s["n"] - 1)) * s["std"] / math.sqrt(s["n"])
    return s["mean"] - half, s["mean"] + half


def describe(frame: pd.DataFrame, sid: str, runs: pd.DataFrame, val: float) -> dict:
    """Setting `sid` of `frame` (settings_frame by sid) as the recommendation reports it: its cost, its
    validation mean `val` (on the shared samples) and its test F1-macro over all its samples, with the interval."""
    row = frame.loc[sid]
    test = runs.loc[runs.sid == sid, TEST].dropna()
    ci = interval(test)
    return {"name": row["name"], "arch": row.arch, "model": row.model, "setting": row.setting,
            "val_f1_macro": val, "test_f1_macro": float(test.mean()) if len(test) else None,
            "test_ci95": list(ci) if ci else None, "test_n": int(len(test)),
            "trainings": _num(row.trainings), "trainable_params": _num(row.trainable_params),
            "compute_s": _num(row.compute_s)}


def _num(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _cost_key(item: dict) -> tuple:
    inf = float("inf")
    return (item["trainings"] if item["trainings"] is not None else inf,
            item["compute_s"] if item["compute_s"] is not None else inf, -item["val_f1_macro"], item["name"])


def recommend(runs: pd.DataFrame, section: str, dataset: str, tolerance: float = TOLERANCE) -> Recommendation:
    rec = Recommendation(section, dataset, tolerance)
    runs = with_ids(runs)
    encoders = runs[~runs.arch.map(is_baseline) & runs[VAL].notna()]
    if encoders.empty:
        rec.skipped = ("no encoder result in this section has a validation F1-macro (val_best/f1_macro), and "
                       "nothing is chosen on test.")
        return rec
    pool = shared_samples(encoders.assign(setting=encoders.sid), VAL)
    frame = settings_frame(runs).set_index("sid")
    means = pool.groupby("sid")[VAL].mean()
    rec.samples = len(pool[PAIR].drop_duplicates())
    rec.settings = len(means)
    items = {sid: describe(frame, sid, runs, float(means[sid])) for sid in means.index}
    chosen_sid = min(items, key=lambda s: (-items[s]["val_f1_macro"], *_cost_key(items[s])[:2], items[s]["name"]))
    rec.chosen = items[chosen_sid]
    best = pool[pool.sid == chosen_sid]
    eligible = [rec.chosen]
    for sid, item in items.items():
        if sid == chosen_sid:
            continue
        pairs = paired(pool[pool.sid == sid], best, VAL)
        if pairs.empty:
            continue
        test = wilcoxon(pairs.a, pairs.b)
        gap = float((pairs.b - pairs.a).mean())
        item.update(val_gap=gap, pairs=int(len(pairs)), wilcoxon_p=test["pvalue"], can_reach=test["can_reach"],
                    within=bool(gap <= tolerance + 1e-12),
                    indistinguishable=bool(test["can_reach"] and test["pvalue"] >= ALPHA))
        if item["within"] or item["indistinguishable"]:
            eligible.append(item)
    rec.cheapest = min(eligible, key=_cost_key)
    stl = frame[(frame.arch == "stl") & (frame.model == rec.cheapest["model"])]
    if len(stl):
        rec.stl = describe(frame, stl.index[0], runs, float(stl[VAL].iloc[0]))
    baselines = frame[frame.baseline & frame[VAL].notna()]
    if len(baselines):
        top = baselines[VAL].idxmax()
        rec.baseline = describe(frame, top, runs, float(baselines.loc[top, VAL]))
    rec.too_small = too_small(pool, rec.samples)
    rec.sentences = sentences(rec)
    return rec


def too_small(pool: pd.DataFrame, n: int) -> dict | None:
    """What the study lacks when n paired samples cannot give p < alpha; None when they can."""
    if min_two_sided_p(n) < ALPHA:
        return None
    needed = next(k for k in range(1, 60) if min_two_sided_p(k) < ALPHA)
    folds = max(int(pd.to_numeric(pool.folds, errors="coerce").max() or 0), 1)
    seeds = sorted(int(s) for s in pool.seed.dropna().unique())
    add = math.ceil(needed / folds) - len(seeds)
    start = max(seeds) + 1 if seeds else 42
    example = ",".join(str(s) for s in seeds + list(range(start, start + max(add, 0))))
    return {"samples": n, "min_p": min_two_sided_p(n), "needed": needed, "folds": folds,
            "folds_run": int(pool.fold.nunique()), "seeds": len(seeds), "seeds_needed": math.ceil(needed / folds),
            "example_seeds": example}


def _ci(item: dict) -> str:
    ci = item["test_ci95"]
    if ci is None:
        return "one sample: no interval"
    return f"95% interval {ci[0]:.3f} to {ci[1]:.3f}, Student t over its {item['test_n']} samples"


def _nan(value) -> float:
    return np.nan if value is None else value


def _cost(item: dict, stl: dict | None) -> str:
    """'3 models per result (68.1M trainable parameters, 150 s of compute): 3 instead of STL's 19, 0.50× STL's
    compute (300 s)'; unknown counts are shown as —, never guessed."""
    models = fmt_count(_nan(item["trainings"]))
    seconds = f"{item['compute_s']:.0f} s" if item["compute_s"] is not None else "— s"
    text = (f"{models} model{'s' if item['trainings'] != 1 else ''} per result "
            f"({fmt_params(_nan(item['trainable_params']))} trainable parameters, {seconds} of compute)")
    if stl is None:
        return text + f"; no STL result of {item['model']} to compare with"
    if item["arch"] == "stl":
        return text + ", which is STL itself"
    if item["compute_s"] and stl["compute_s"]:
        compute = f"{item['compute_s'] / stl['compute_s']:.2f}× STL's compute ({stl['compute_s']:.0f} s)"
    else:
        compute = "compute not comparable (unknown)"
    return text + f": {models} instead of STL's {fmt_count(_nan(stl['trainings']))}, {compute}"


def _points(value: float) -> str:
    return f"{value:g} point" + ("" if value == 1 else "s")


def _n(count: int, word: str) -> str:
    """'1 fold', '2 folds'."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def _cheapest(rec: Recommendation, tol: str) -> str:
    """The sentence on the cheapest setting tied with the chosen one on validation (not the chosen one)."""
    cheap = rec.cheapest
    if cheap["within"] and cheap["indistinguishable"]:
        why = (f"within {tol}, and the paired Wilcoxon test of validation F1-macro does not separate "
               f"them (p = {cheap['wilcoxon_p']:.3g})")
    elif cheap["within"]:
        why = f"within {tol}" + (
            f" (the paired Wilcoxon test of validation F1-macro does separate them, p = "
            f"{cheap['wilcoxon_p']:.3g}, but by less than {tol})" if cheap["can_reach"]
            else " (too few pairs for a Wilcoxon test to separate them)")
    else:
        why = (f"more than {tol}, but the paired Wilcoxon test of validation F1-macro does not "
               f"separate them (p = {cheap['wilcoxon_p']:.3g})")
    side = "below" if cheap["val_gap"] >= 0 else "above"
    return (f"**Cheapest equivalent on validation: {cheap['name']}.** Its mean validation F1-macro, "
            f"{cheap['val_f1_macro']:.3f}, is {abs(100 * cheap['val_gap']):.2f} points {side} the chosen "
            f"setting's over their {cheap['pairs']} paired samples: {why}. Its test F1-macro is "
            f"{cheap['test_f1_macro']:.3f} ({_ci(cheap)}). It trains {_cost(cheap, rec.stl)}.")


def sentences(rec: Recommendation) -> list[str]:
    chosen, cheap, tol = rec.chosen, rec.cheapest, _points(100 * rec.tolerance)
    samples = _n(rec.samples, "(fold, seed) sample")
    ranked = (f"Of the {rec.settings} encoder settings, it has the highest mean validation F1-macro, "
              f"{chosen['val_f1_macro']:.3f}, over the {samples} they all share." if rec.settings > 1 else
              f"It is the only encoder setting in this section: mean validation F1-macro "
              f"{chosen['val_f1_macro']:.3f} over {samples}.")
    out = [f"**Chosen on validation: {chosen['name']}.** {ranked} Its test F1-macro is "
           f"{chosen['test_f1_macro']:.3f} ({_ci(chosen)}). It trains "
           f"{_cost(chosen, rec.stl if rec.stl and rec.stl['model'] == chosen['model'] else None)}."]
    if cheap is not chosen:
        out.append(_cheapest(rec, tol))
    elif rec.settings > 1:
        out.append(f"**No cheaper equivalent.** No setting with fewer trainings or less compute is within {tol} "
                   "of it on validation or indistinguishable from it by a paired Wilcoxon test of "
                   f"validation F1-macro (p ≥ {rec.alpha}).")
    if rec.baseline is not None:
        base, diff = rec.baseline, 100 * (rec.baseline["val_f1_macro"] - chosen["val_f1_macro"])
        text = (f"The best classical baseline on validation, {base['name']}, has validation F1-macro "
                f"{base['val_f1_macro']:.3f} ({diff:+.2f} points against the chosen setting; test "
                f"{base['test_f1_macro']:.3f}).")
        if diff >= 0:
            text = ("**⚠ " + text[:-1] + ": no encoder setting beats it on validation.** Check the training "
                    "budget (epochs, learning rate, max length) before trusting the encoder results.")
        out.append(text)
    if (small := rec.too_small) is not None:
        more_folds = (f"run the remaining {small['folds'] - small['folds_run']} of the {small['folds']} folds, "
                      if small["folds_run"] < small["folds"] else "")
        repeat = "the split" if small["folds"] == 1 else f"the {small['folds']} folds"
        out.append(f"**⚠ This study is too small for any difference to reach p < {rec.alpha}.** The settings share "
                   f"{_n(small['samples'], '(fold, seed) sample')} ({_n(small['folds_run'], 'fold')} × "
                   f"{_n(small['seeds'], 'seed')}); with so few pairs a two-sided Wilcoxon signed-rank test cannot "
                   f"give p below {small['min_p']:.3g}, so \"indistinguishable\" here only means \"within {tol}\". "
                   f"At least {small['needed']} paired samples are needed: {more_folds}repeat {repeat} with "
                   f"{small['seeds_needed']} seeds "
                   f"(e.g. seed={small['example_seeds']}) or use {small['needed']} folds "
                   f"(split.folds={small['needed']}), then rerun the report.")
    out.append("Nothing here is chosen on test: the setting is chosen on validation F1-macro, and test "
               "F1-macro is reported only.")
    return out
