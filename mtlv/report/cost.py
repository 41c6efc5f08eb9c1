"""Table 7: cost vs quality. Every setting of a section (architecture x model x grouping setting, and the
classical baselines) with the models it trains per result, their trainable parameters and the jobs' summed
seconds, beside its mean test and validation F1-macro, and whether it is on the Pareto frontier of
(seconds, test F1-macro). Built from the runs' metrics and params only (no artifact is read)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from mtlv.report.render import DASH, Table, fmt
from mtlv.report.settings import fmt_count, fmt_params, pareto, settings_frame

COST_AXIS = "compute_s"  # the frontier's cost: recorded by every run (parameters are missing in older stores)


def cost_table(runs: pd.DataFrame, dataset: str) -> Table:
    raw = settings_frame(runs)
    raw["pareto"] = pareto(raw[COST_AXIS], raw.f1_macro)
    frame = pd.DataFrame({
        "Setting": [f"{n} ⚠ {m} missing" if m else n for n, m in zip(raw.name, raw.missing)],
        "Trainings": raw.trainings.map(fmt_count),
        "Trained parameters": raw.trainable_params.map(fmt_params),
        "Compute per result (s)": [fmt(c, np.nan, 1) for c in raw.compute_s],
        "Test F1-macro": [fmt(m, s) for m, s in zip(raw.f1_macro, raw.f1_macro_std)],
        "Val. F1-macro": raw.val_f1_macro.map(fmt), "n": raw.n.astype(str),
        "Pareto": np.where(raw.pareto, "✓", "")})
    bold = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    bold.loc[raw.pareto.to_numpy(), "Setting"] = True
    notes = ["Per (fold, seed) result: Trainings = models trained (STL one per label, GMTL one per group, MTL and "
             "GMHL one, a one-vs-rest logistic regression one per label); Trained parameters = their trainable "
             "parameters added up (baselines: the regression's coefficients; — where the runs did not record it); "
             "Compute = the jobs' seconds added up (training and evaluation; a reused model counts its training "
             "time). Test and validation F1-macro: mean (± std) over the n samples.",
             "Pareto (bold): no other setting has both less compute and a higher mean test F1-macro. The frontier "
             "only describes the cost of each test score; the recommendation chooses on validation."]
    if raw.missing.any():
        notes.append("⚠ k missing: the setting lacks k of the section's (fold, seed) samples (failed or missing "
                     "jobs); its means are over the others.")
    if raw.trainable_params.isna().any() and not raw.trainable_params.isna().all():
        notes.append("—: some runs of that setting did not record trainable parameters (trained before MTLV "
                     "recorded them); the count is not guessed.")
    return Table("table7_cost", dataset, f"Table 7 ({dataset}): cost vs quality", frame, raw, bold, notes)
