"""Tables 1-3 of the reference study, built from the tidy runs of `collect` (one dataset each): 1 architecture
× model, 2 the GMHL/GMTL clustering grid, 3 Wilcoxon GMTL vs MTL (table 4: per_label.py, 5: timing.py; their
rendering: render.py).

Means and standard deviations are over samples = (fold, seed) results. For GMHL/GMTL, the clustering
setting reported in tables 1, 3, 4 and 5 is the one with the best mean *validation* F1-macro
(criterion='val_f1_macro'); criterion='f1_macro' selects on test as the reference did, which is optimistic.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtlv.report.reference import CAVEAT, Reference
from mtlv.report.stats import best_setting, paired, summarize, wilcoxon
from mtlv.report.render import DASH, Table, fmt, fmt_diff, fmt_ref

ARCHS = ["stl", "mtl", "gmhl", "gmtl"]
CLUSTERED = ("gmhl", "gmtl")
MODELS = ["bert", "biobert", "bluebert"]
METRICS = {"f1_macro": "F1-macro", "f1_micro": "F1-micro", "subset_accuracy": "Subset acc."}
WARN = "⚠"
MIXED = "‡"
MIXED_NOTE = (f"{MIXED} the mean is over folds that scored different label sets: a label without test positives "
              "in a fold is left out of that fold's F1-macro (n_undefined differs between the folds).")


def labels_differ(rows: pd.DataFrame) -> bool:
    """Whether the results' F1-macro covered different numbers of labels (test/n_undefined differs)."""
    return bool(rows["n_undefined"].nunique(dropna=True) > 1) if "n_undefined" in rows else False


def is_baseline(arch: str) -> bool:
    return str(arch).startswith("baseline")


def arch_order(archs) -> list[str]:
    archs = set(archs)
    return sorted(a for a in archs if is_baseline(a)) + [a for a in ARCHS if a in archs] + sorted(
        a for a in archs if a not in ARCHS and not is_baseline(a))


def model_order(models) -> list[str]:
    return [m for m in MODELS if m in set(models)] + sorted(set(models) - set(MODELS))


def setting_label(setting: str) -> str:
    """'description-k4' -> 'description, k=4'; 'label-kauto' -> 'label, k=auto'."""
    feature, _, k = str(setting).rpartition("-k")
    return f"{feature}, k={k}" if feature and (k.isdigit() or k == "auto") else (setting or "")


def chosen(runs: pd.DataFrame, arch: str, model: str, criterion: str) -> tuple[pd.DataFrame, str]:
    """The runs that represent (arch, model): all of them, or those of the best clustering setting."""
    rows = runs[(runs.arch == arch) & (runs.model == model)]
    if arch in CLUSTERED:
        setting = best_setting(rows, criterion) or ""
        return rows[rows.setting == setting], setting
    return rows, ""


def main_table(runs: pd.DataFrame, dataset: str, ref: Reference, criterion: str = "val_f1_macro") -> Table:
    """Table 1: architecture x model -> F1-macro, F1-micro, subset accuracy; baselines first."""
    raw = []
    for arch in arch_order(runs.arch):
        for model in model_order(runs[runs.arch == arch].model):
            rows, setting = chosen(runs, arch, model, criterion)
            entry = {"dataset": dataset, "arch": arch, "model": model, "setting": setting, "n": len(rows),
                     "labels_differ": labels_differ(rows)}
            for m in METRICS:
                s = summarize(rows[m])
                hit = ref.entry(1, dataset, arch, model, m)
                entry.update({f"{m}_mean": s["mean"], f"{m}_std": s["std"], f"{m}_ref": hit[0] if hit else np.nan,
                              f"{m}_ref_std": hit[1] if hit else np.nan})
            entry["ref_model"] = ref.model_for(dataset, model) or ""
            entry["ref_setting"] = ref.chosen_setting(dataset, arch, model) if arch in CLUSTERED else ""
            raw.append(entry)
    raw = pd.DataFrame(raw)
    base = raw[raw.arch.map(is_baseline)]
    best_base = base.loc[base.f1_macro_mean.idxmax()] if base.f1_macro_mean.notna().any() else None
    raw["below_baseline"] = (~raw.arch.map(is_baseline)) & (
        raw.f1_macro_mean < best_base.f1_macro_mean if best_base is not None else False)
    shown = {"Architecture": raw.arch, "Model": raw.model, "Setting": raw.setting.map(setting_label)}
    ref_metrics = [m for m in METRICS if ref.has(1, dataset, m)]
    for m, name in METRICS.items():
        shown[name] = [fmt(a, b) for a, b in zip(raw[f"{m}_mean"], raw[f"{m}_std"])]
    done = runs[runs.f1_macro.notna()]
    samples = len(done[["fold", "seed"]].drop_duplicates()) if len(done) else 0
    raw["missing"] = [max(samples - n, 0) for n in raw.n]
    shown["n"] = [f"{n} ⚠ {m} missing" if m else str(n) for n, m in zip(raw.n, raw.missing)]
    if ref_metrics and ((raw.ref_model != "") & (raw.ref_model != raw.model)).any():
        shown["Ref. model"] = [r or DASH for r in raw.ref_model]
    if ref_metrics and (raw.ref_setting != "").any():
        shown["Ref. setting"] = [setting_label(r) or DASH for r in raw.ref_setting]
    for m in ref_metrics:
        pairs = [None if not np.isfinite(v) else (v, sd) for v, sd in zip(raw[f"{m}_ref"], raw[f"{m}_ref_std"])]
        shown[f"{METRICS[m]} (ref)"] = [fmt(*p) if p else DASH for p in pairs]
        shown[f"Δ {METRICS[m]}"] = [fmt_diff(a, p) for a, p in zip(raw[f"{m}_mean"], pairs)]
    frame = pd.DataFrame(shown)
    frame.loc[raw.below_baseline, "F1-macro"] += f" {WARN}"
    frame.loc[raw.labels_differ, "F1-macro"] += f" {MIXED}"
    bold = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    for m, name in METRICS.items():
        if raw[f"{m}_mean"].notna().any():
            bold.loc[raw[f"{m}_mean"] == raw[f"{m}_mean"].max(), name] = True
    notes = [f"Mean ± standard deviation over the (fold, seed) samples (n); bold: best per column. GMHL/GMTL "
             f"show their best clustering setting, chosen by mean {criterion_text(criterion)}."]
    if raw.below_baseline.any():
        names = ", ".join(f"{a}/{m}" for a, m in zip(raw.arch[raw.below_baseline], raw.model[raw.below_baseline]))
        notes.append(f"{WARN} {int(raw.below_baseline.sum())} encoder result(s) score below the best classical "
                     f"baseline ({best_base.arch}, F1-macro {best_base.f1_macro_mean:.3f}): {names}. A fine-tuned "
                     "encoder that does not beat TF-IDF features on the same split is not a result to publish; "
                     "check epochs, learning rate and max length first.")
    if raw.missing.any():
        notes.append("⚠ k missing: the row lacks k of the section's (fold, seed) samples (failed or missing jobs); "
                     "its means are over the others.")
    if raw.labels_differ.any():
        notes.append(MIXED_NOTE)
    if ref_metrics:
        notes += reference_notes(ref, dataset, raw.model, "(ref): the published value ± std over folds (Tables 4.3, "
                                 "4.6; GMHL/GMTL at the clustering the thesis chose); Δ = ours − published.")
    return Table("table1_main", dataset, f"Table 1 ({dataset}): architectures × models", frame, raw, bold, notes)


def published_columns(hit: tuple[float, float] | None) -> dict:
    return {"f1_macro_ref": hit[0] if hit else np.nan, "f1_macro_ref_std": hit[1] if hit else np.nan}


def published_gain(ref: Reference, dataset: str, model: str, metric: str) -> float:
    """GMTL − MTL as published (table 1 of the reference), NaN when either is missing."""
    gmtl, mtl = (ref.value(1, dataset, a, model, metric) for a in ("gmtl", "mtl"))
    return gmtl - mtl if gmtl is not None and mtl is not None else np.nan


def reference_notes(ref: Reference, dataset: str, models, what: str) -> list[str]:
    """What the published columns are, which reference model stands in for ours, and the threshold caveat."""
    notes = [what]
    stand_in = sorted({m for m in models if ref.model_for(dataset, m) not in (None, m)})
    if stand_in:
        notes.append(f"{', '.join(stand_in)}: not in the reference study; compared with its "
                     f"{ref.fallback_model} numbers (report option reference_model).")
    return notes + [f"Caveat: {CAVEAT}"]


def criterion_text(criterion: str) -> str:
    return ("validation F1-macro" if criterion == "val_f1_macro"
            else "test F1-macro (as the reference; optimistic, the test folds choose the setting)")


def grid_table(runs: pd.DataFrame, dataset: str, ref: Reference, criterion: str = "val_f1_macro") -> Table:
    """Table 2: the full clustering grid (feature x k) of GMHL and GMTL per model, best marked: the reference
    study's kind of setting (k-medoids, a given k, the summed loss); the rest is table 6 (beyond.py)."""
    every = runs
    runs = runs[(runs.algorithm.fillna("kmedoids") == "kmedoids") & (runs.weighting.fillna("") == "")
                & (runs.k_requested.astype(str) != "auto")]
    raw = []
    for arch in [a for a in CLUSTERED if a in set(runs.arch)]:
        for model in model_order(runs[runs.arch == arch].model):
            rows = runs[(runs.arch == arch) & (runs.model == model)]
            # the setting tables 1, 3-5 and the recommendation name, chosen over every setting (the beyond ones
            # too): bold here only if it is in this grid, so no table names another "best"
            _, best = chosen(every, arch, model, criterion)
            for setting, group in rows.groupby("setting"):
                s, v = summarize(group.f1_macro), summarize(group.val_f1_macro)
                raw.append({"dataset": dataset, "arch": arch, "model": model, "feature": group.feature.iloc[0],
                            "k": group.k.iloc[0], "setting": setting, "f1_macro_mean": s["mean"],
                            "f1_macro_std": s["std"], "val_f1_macro_mean": v["mean"], "n": s["n"],
                            "labels_differ": labels_differ(group),
                            "best": setting == best, **published_columns(ref.entry(2, dataset, arch, model,
                                                                                       "f1_macro", setting))})
    raw = pd.DataFrame(raw, columns=["dataset", "arch", "model", "feature", "k", "setting", "f1_macro_mean",
                                     "f1_macro_std", "val_f1_macro_mean", "n", "labels_differ", "best", "f1_macro_ref",
                                     "f1_macro_ref_std"])
    ks = sorted({int(k) for k in raw.k.dropna()})
    shown, bold = [], []
    for (arch, model, feature), group in raw.groupby(["arch", "model", "feature"], sort=False):
        row, marks = {"Architecture": arch, "Model": model, "Feature": feature}, {}
        for k in ks:
            hit = group[group.k == k]
            published = None if hit.empty or not np.isfinite(hit.f1_macro_ref.iloc[0]) else (
                hit.f1_macro_ref.iloc[0], hit.f1_macro_ref_std.iloc[0])
            cell = DASH if hit.empty else fmt(hit.f1_macro_mean.iloc[0], hit.f1_macro_std.iloc[0]) + (
                f" {MIXED}" if hit.labels_differ.iloc[0] else "") + fmt_ref(published, hit.f1_macro_mean.iloc[0])
            row[f"k={k}"], marks[f"k={k}"] = cell, bool(not hit.empty and hit.best.iloc[0])
        shown.append(row)
        bold.append({"Architecture": False, "Model": False, "Feature": False, **marks})
    frame, bold = pd.DataFrame(shown), pd.DataFrame(bold)
    notes = [f"Test F1-macro, mean ± std over (fold, seed). Bold: the setting chosen per model (best mean "
             f"{criterion_text(criterion)}, over every setting of the section; none is bold where the chosen one "
             "is beyond this grid: Table 6)."]
    if raw.labels_differ.any():
        notes.append(MIXED_NOTE)
    if raw.f1_macro_ref.notna().any():
        notes += reference_notes(ref, dataset, raw.model, "[ref x ± s, Δ d]: the published F1-macro ± std "
                                 "(Appendix Tables C.1, C.2, D.1, D.2); Δ = ours − published.")
    return Table("table2_clustering", dataset, f"Table 2 ({dataset}): GMHL/GMTL clustering grid (F1-macro)",
                 frame, raw, bold, notes)


def wilcoxon_table(runs: pd.DataFrame, dataset: str, ref: Reference, criterion: str = "val_f1_macro") -> Table:
    """Table 3: Wilcoxon signed-rank test, GMTL (best setting) vs MTL per model, paired by (fold, seed)."""
    raw = []
    for model in model_order(runs[runs.arch == "gmtl"].model):
        mtl = runs[(runs.arch == "mtl") & (runs.model == model)]
        gmtl, setting = chosen(runs, "gmtl", model, criterion)
        for m in ("f1_macro", "f1_micro"):
            pairs = paired(gmtl, mtl, m)
            test = wilcoxon(pairs.a, pairs.b)
            raw.append({"dataset": dataset, "model": model, "metric": m, "gmtl_setting": setting, "n": test["n"],
                        "n_nonzero": test["n_nonzero"], "min_p": test["min_p"], "can_reach": test["can_reach"],
                        "mtl_mean": pairs.b.mean() if len(pairs) else np.nan,
                        "gmtl_mean": pairs.a.mean() if len(pairs) else np.nan,
                        "mean_diff": (pairs.a - pairs.b).mean() if len(pairs) else np.nan,
                        "statistic": test["statistic"], "pvalue": test["pvalue"], "note": test["note"],
                        "pvalue_ref": ref.value(3, dataset, "gmtl-vs-mtl", model, f"p_value_{m}"),
                        "mean_diff_ref": published_gain(ref, dataset, model, m)})
    raw = pd.DataFrame(raw, columns=["dataset", "model", "metric", "gmtl_setting", "n", "n_nonzero", "min_p",
                                     "can_reach", "mtl_mean", "gmtl_mean",
                                     "mean_diff", "statistic", "pvalue", "note", "pvalue_ref", "mean_diff_ref"])
    frame = pd.DataFrame({
        "Model": raw.model, "Metric": raw.metric.map(METRICS), "GMTL setting": raw.gmtl_setting.map(setting_label),
        "n": [f"{n} ({z} ≠ 0)" if z != n else str(n) for n, z in zip(raw.n, raw.n_nonzero)],
        "min p": [f"{p:.3g}" for p in raw.min_p], "MTL": raw.mtl_mean.map(fmt), "GMTL": raw.gmtl_mean.map(fmt),
        "Δ (GMTL − MTL)": [f"{d:+.3f}" if np.isfinite(d) else DASH for d in raw.mean_diff],
        "W": [f"{w:g}" if np.isfinite(w) else DASH for w in raw.statistic],
        "p": [f"{p:.4f}" if np.isfinite(p) else DASH for p in raw.pvalue], "Note": raw.note})
    if raw.pvalue_ref.notna().any():
        frame["Δ (ref)"] = [f"{d:+.3f}" if d is not None and np.isfinite(d) else DASH for d in raw.mean_diff_ref]
        frame["p (ref)"] = [f"{p:.4f}" if p is not None and np.isfinite(p) else DASH for p in raw.pvalue_ref]
    notes = ["Two-sided Wilcoxon signed-rank test (exact up to 25 pairs, ties and zeros included, by enumerating all "
             "sign flips; scipy.stats.wilcoxon above), paired by (fold, seed); not corrected for multiple tests "
             "(Table 8 is); n = pairs (≠ 0: those with a non-zero difference, the only ones ranked); min p = the "
             "smallest p those pairs could give (all differences of one sign). ⚠: min p ≥ 0.05, so no difference "
             "could be significant; repeat the cross-validation with more seeds (SEEDS=42,43,44 in `make "
             "reproduce-tables`: 12 pairs for Open-I's 4 folds, 9 for OHSUMED's 3)."]
    if raw.pvalue_ref.notna().any():
        notes += reference_notes(ref, dataset, raw.model, "p (ref): the published p (Tables 4.4, 4.7; the thesis "
                                 "tested 'a sample of size 10'); Δ (ref): its GMTL − MTL mean from Tables 4.3, 4.6.")
    return Table("table3_wilcoxon", dataset, f"Table 3 ({dataset}): GMTL vs MTL, Wilcoxon signed-rank", frame, raw,
                 None, notes)
