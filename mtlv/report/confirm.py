"""Did the recommendation hold? A report section written from the fresh seeds of `study.confirm=N`
(mtlv/study/confirm.py) against what recommendation.json said:

- the recommended setting's rank among the confirmed settings on the fresh seeds' mean test F1-macro, and its
  gap to the best of the others (test: the fresh splits' held-out documents; nothing is chosen on them);
- for each fresh result of a setting the report gave an interval for, whether it falls inside that interval;
- whether the cheapest-equivalent claim still holds: the recommended setting's mean validation F1-macro minus
  the cheapest's, over the fresh (fold, seed) samples both have, is within the report's margin.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

VAL, TEST = "val_f1_macro", "f1_macro"
PAIR = ["fold", "seed"]


def printed_interval(item: dict | None) -> list[float] | None:
    """The test F1-macro interval recommendation.json holds for a setting (None: none was printed)."""
    if not item:
        return None
    ci = item.get("test_ci") or item.get("test_ci95")
    return [float(ci[0]), float(ci[1])] if ci else None


def margin_of(section: dict) -> float:
    """The gap the report counts as equivalent (study.margin; the report's tolerance before it)."""
    value = section.get("margin", section.get("tolerance"))
    return float(value) if value is not None else 0.01


def _key(item: dict) -> tuple[str, str, str]:
    return str(item["arch"]), str(item["model"]), str(item.get("setting") or "")


def _samples(fresh: pd.DataFrame, item: dict, dataset: str) -> pd.DataFrame:
    arch, model, setting = _key(item)
    rows = fresh[(fresh.dataset.astype(str) == dataset) & (fresh.arch.astype(str) == arch)
                 & (fresh.model.astype(str) == model) & (fresh.setting.fillna("").astype(str) == setting)]
    return rows[PAIR + [VAL, TEST]].sort_values(PAIR).reset_index(drop=True)


def held(section: dict, settings: list[tuple[str, dict]], fresh: pd.DataFrame, study: pd.DataFrame) -> dict:
    """The numbers of one section's "Did it hold?" (JSON-ready); `study`: the study's own results."""
    dataset = str(section["dataset"])
    printed = {_key(section[k]): section[k] for k in ("chosen", "cheapest", "stl", "baseline") if section.get(k)}
    rows = []
    for role, item in settings:
        samples = _samples(fresh, item, dataset)
        ci = printed_interval(printed.get(_key(item)))
        results = [{"fold": int(f), "seed": int(s), "test_f1_macro": float(t), "val_f1_macro": float(v),
                    "inside": None if ci is None else bool(ci[0] <= t <= ci[1])}
                   for f, s, v, t in samples[PAIR + [VAL, TEST]].itertuples(index=False)]
        rows.append({"role": role, "name": item["name"], "arch": item["arch"], "model": item["model"],
                     "setting": item.get("setting") or "", "interval": ci, "fresh": results,
                     "test_mean": float(samples[TEST].mean()) if len(samples) else None,
                     "original_test": _mean(_samples(study, item, dataset)[TEST])})
    out = {"section": section["section"], "dataset": dataset, "margin": margin_of(section), "settings": rows}
    ranked = sorted((r for r in rows if r["test_mean"] is not None), key=lambda r: (-r["test_mean"], r["name"]))
    chosen = rows[0] if rows and rows[0]["role"] == "recommended" else None
    if chosen is not None and chosen["test_mean"] is not None:
        others = [r for r in ranked if r is not chosen]
        out["rank"] = 1 + sum(r["test_mean"] > chosen["test_mean"] for r in others)  # ties share a rank
        out["of"] = len(ranked)
        out["gap"] = chosen["test_mean"] - others[0]["test_mean"] if others else None
        out["best_other"] = others[0]["name"] if others else None
    cheapest = next((r for r in rows if r["role"] == "cheapest equivalent"), None)
    if chosen is not None and cheapest is not None:
        a = _samples(fresh, section["chosen"], dataset)
        b = _samples(fresh, section["cheapest"], dataset)
        both = a.merge(b, on=PAIR, suffixes=("_a", "_b"))
        if len(both):
            gap = float((both[f"{VAL}_a"] - both[f"{VAL}_b"]).mean())
            out["cheapest"] = {"name": cheapest["name"], "pairs": int(len(both)), "val_gap": gap,
                               "test_gap": float((both[f"{TEST}_a"] - both[f"{TEST}_b"]).mean()),
                               "holds": bool(gap <= out["margin"] + 1e-12)}
        else:
            out["cheapest"] = {"name": cheapest["name"], "pairs": 0, "holds": None}
    return out


def _mean(values: pd.Series) -> float | None:
    return float(values.mean()) if len(values.dropna()) else None


def _f(value) -> str:
    return "—" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.3f}"


def _points(value: float) -> str:
    return f"{100 * value:+.2f} points"


def markdown(results: list[dict], seeds: list[int]) -> list[str]:
    """The "Did it hold?" section (report.md and recommendation.md)."""
    shown = ",".join(str(s) for s in seeds)
    lines = ["", f"## Did it hold? ({len(seeds)} fresh seed{'s' if len(seeds) != 1 else ''}: {shown})", "",
             "The settings the recommendation rests on, trained again on fresh seeds (new splits) with the study's "
             "own options (`study.confirm`); test F1-macro of each fresh (fold, seed) result."]
    for result in results:
        lines += ["", f"### {result['section']}", ""]
        if "rank" in result:
            gap = (f"{_points(result['gap'])} against the best of the others, {result['best_other']}"
                   if result.get("gap") is not None else "no other setting to compare with")
            tied = result.get("gap") == 0
            verdict = ("it is still the best" + (", tied" if tied else "") if result["rank"] == 1
                       else "it is no longer the best")
            lines.append(f"**Recommended setting: rank {result['rank']} of {result['of']}** on the fresh seeds' mean "
                         f"test F1-macro ({verdict}; {gap}).")
        else:
            lines.append("**Recommended setting: no fresh result** (its confirmation jobs did not finish).")
        inside = [f["inside"] for r in result["settings"] for f in r["fresh"] if f["inside"] is not None]
        if inside:
            lines.append(f"{sum(inside)} of {len(inside)} fresh results fall inside the interval the report printed "
                         "for their setting.")
        else:
            lines.append("The report printed no interval for these settings (one sample gives none): no fresh result "
                         "can be checked against one.")
        if (cheap := result.get("cheapest")) is not None:
            if cheap["holds"] is None:
                lines.append(f"Cheapest equivalent, {cheap['name']}: no fresh sample shared with the recommended "
                             "setting; the claim is unchecked.")
            else:
                lines.append(f"Cheapest equivalent, {cheap['name']}: the recommended setting's validation F1-macro "
                             f"minus its own is {_points(cheap['val_gap'])} over {cheap['pairs']} fresh sample(s) "
                             f"(test: {_points(cheap['test_gap'])}): the claim "
                             + ("**holds**" if cheap["holds"] else "**does not hold**")
                             + f" (margin {100 * result['margin']:g} point(s)).")
        else:
            lines.append("No cheaper equivalent was claimed.")
        lines += ["", "| setting | role | report's test F1-macro | report's interval | fresh results (seed: test F1-macro) "
                  "| fresh mean |", "|---|---|---|---|---|---|"]
        for row in result["settings"]:
            ci = row["interval"]
            fresh = ", ".join(f"{f['seed']}" + (f"/fold {f['fold']}" if len(row["fresh"]) > len(seeds) else "")
                              + f": {f['test_f1_macro']:.3f}"
                              + ("" if f["inside"] is None else (" (inside)" if f["inside"] else " (outside)"))
                              for f in row["fresh"]) or "none finished"
            lines.append(f"| {row['name']} | {row['role']} | {_f(row['original_test'])} | "
                         f"{'—' if ci is None else f'{ci[0]:.3f} to {ci[1]:.3f}'} | {fresh} | {_f(row['test_mean'])} |")
    return lines
