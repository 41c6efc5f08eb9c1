"""Table 4: per-label test F1 of GMTL (best setting) and MTL, beside each label's test count and share.

Rare labels are where grouping is expected to matter (and where one fold's F1 swings most), so the
counts sit next to the scores.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtlv.report.reference import Reference
from mtlv.report.stats import summarize
from mtlv.evaluation.metrics import constant_labels_note
from mtlv.report.render import DASH, Table, fmt, fmt_ref, md_text
from mtlv.report.study_tables import chosen, model_order, reference_notes, setting_label


def constant_labels_warning(counts: pd.DataFrame | None) -> str | None:
    """The labels on every test document (share 1 in every split) or on none (count 0 in every split), and how
    they enter F1-macro, as Markdown (label names escaped); None when there are none or no counts."""
    if counts is None or counts.empty:
        return None
    always = [md_text(n) for n in counts.index[counts.share.to_numpy(float) >= 1 - 1e-9]]
    never = [md_text(n) for n in counts.index[counts["count"].to_numpy(float) == 0]]
    return constant_labels_note(always, never)


def label_scores(labels: pd.DataFrame, run_ids) -> pd.DataFrame:
    """label -> mean, std, n of test F1 over the given runs."""
    rows = labels[labels.run_id.isin(set(run_ids))]
    out = {label: summarize(group.f1) for label, group in rows.groupby("label")}
    return pd.DataFrame.from_dict(out, orient="index", columns=["mean", "std", "n"])


def higher(a, b) -> list[bool]:
    """Elementwise: a is defined and beats b (or b is undefined). Ties are bold in neither column."""
    return [bool(np.isfinite(x) and (not np.isfinite(y) or x > y)) for x, y in zip(a, b)]


def label_table(runs: pd.DataFrame, labels: pd.DataFrame, counts: pd.DataFrame | None, dataset: str,
                ref: Reference, criterion: str = "val_f1_macro", label_order: list[str] | None = None) -> Table:
    """`counts`: index = label, columns count (mean test positives per fold) and share (of test documents)."""
    models = [m for m in model_order(runs[runs.arch == "gmtl"].model)
              if ((runs.arch == "mtl") & (runs.model == m)).any()]
    names = list(label_order or [])
    names += sorted(set(labels[labels.run_id.isin(runs.run_id)].label) - set(names))
    if counts is not None:
        names += [n for n in counts.index if n not in names]
    raw = pd.DataFrame({"label": names})
    raw["test_count"] = [counts["count"].get(n, np.nan) if counts is not None else np.nan for n in names]
    raw["test_share"] = [counts["share"].get(n, np.nan) if counts is not None else np.nan for n in names]
    shown = {"Label": names, "Test count": [f"{c:.1f}".rstrip("0").rstrip(".") if np.isfinite(c) else DASH
                                            for c in raw.test_count],
             "Share": [f"{100 * s:.1f}%" if np.isfinite(s) else DASH for s in raw.test_share]}
    bold = {"Label": [False] * len(names), "Test count": [False] * len(names), "Share": [False] * len(names)}
    settings = {}
    for model in models:
        gmtl, setting = chosen(runs, "gmtl", model, criterion)
        settings[model] = setting
        mtl = runs[(runs.arch == "mtl") & (runs.model == model)]
        scores = {"gmtl": label_scores(labels, gmtl.run_id), "mtl": label_scores(labels, mtl.run_id)}
        means = {}
        for arch, score in scores.items():
            mean = score["mean"].reindex(names)
            std = score["std"].reindex(names)
            refs = [ref.entry(4, dataset, arch, model, "f1", n) for n in names]
            raw[f"{arch}_{model}_mean"], raw[f"{arch}_{model}_std"] = mean.values, std.values
            raw[f"{arch}_{model}_ref"] = [r[0] if r else np.nan for r in refs]
            raw[f"{arch}_{model}_ref_std"] = [r[1] if r else np.nan for r in refs]
            col = f"{arch.upper()} {model}"
            shown[col] = [fmt(a, b) + fmt_ref(r, a) for a, b, r in zip(mean, std, refs)]
            means[col] = mean.values
        g, m = list(means)
        bold[g], bold[m] = higher(means[g], means[m]), higher(means[m], means[g])
    frame, bold = pd.DataFrame(shown), pd.DataFrame(bold)
    used = "; ".join(f"{m}: GMTL {setting_label(s)}" for m, s in settings.items())
    notes = ["Test F1 per label, mean ± std over (fold, seed); bold: the higher of GMTL and MTL for the model. "
             "Test count: positives per test fold (mean); share: of the test documents.",
             f"GMTL settings: {used or DASH}."]
    if warning := constant_labels_warning(counts):
        notes.append(f"⚠ {warning}")
    if any(raw[c].notna().any() for c in raw.columns if c.endswith("_ref")):
        notes += reference_notes(ref, dataset, models, "[ref x ± s, Δ d]: the published F1 ± std (Table 4.5: "
                                 "Open-I, BlueBERT; Table 4.8: OHSUMED, BioBERT); Δ = ours − published. Labels are "
                                 "matched by name (MTLV's 'lung/hypoinflation' = the thesis's 'lung hypoinflation'; "
                                 "OHSUMED by category code).")
    return Table("table4_per_label", dataset, f"Table 4 ({dataset}): per-label F1, GMTL vs MTL", frame, raw, bold,
                 notes)
