"""The recommendation of a report section, written from its numbers: the setting leading on validation, whether
its lead is larger than the seed-to-seed spread, the cheapest setting *shown* equivalent to it, what they cost
against STL, and whether the study can make anything significant. Nothing is chosen on test; test numbers are
reported with an interval that says what it covers (intervals.py).

- Leader: among the encoder settings with the most (fold, seed) samples (a setting with failed or missing jobs
  is ranked, marked, and chosen only when no setting is complete), the highest mean validation F1-macro; ties
  (to 1e-9) go to fewer models trained, then fewer trained parameters, then the architecture order MTL, GMHL,
  GMTL, STL, then the name: stable facts, never measured seconds, so the same numbers give the same answer.
- Resolved: with two or more samples, the leader is *chosen* only when every other complete setting trails it
  by more than the seed-to-seed spread of their gap (the standard deviation over the (fold, seed) samples
  both have of leader minus setting: pairing takes out what moves both, such as an easy fold); otherwise
  the ranking is not resolved, and no setting is called chosen. One sample: the ranking is unchecked.
- Cheapest equivalent: among the settings cheaper than the leader (the same cost order), the cheapest whose
  validation F1-macro is shown within +-margin of the leader's by two one-sided tests (TOST) on the paired
  (fold, seed) samples the two share, with the corrected resampled variance. Never a setting worse by more
  than the margin on average; too few samples to show it is said, with how many would.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from mtlv.errors import ConfigError
from mtlv.report.intervals import equivalence, setting_interval, split_ratio
from mtlv.report.power import Power
from mtlv.report.significance import section_power
from mtlv.report.settings import fmt_count, fmt_params, settings_frame, with_ids
from mtlv.report.stats import ALPHA, PAIR, paired
from mtlv.report.study_tables import is_baseline

MARGIN = 0.01
VAL, TEST = "val_f1_macro", "f1_macro"
ARCH_RANK = {"mtl": 0, "gmhl": 1, "gmtl": 2, "stl": 3}   # the tie order: fewer models, fewer heads first
DIGITS = 9                                              # means equal to this many digits are a tie


def check_margin(margin, option: str = "margin") -> float:
    """The equivalence margin, or one ConfigError naming the option (before any work)."""
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not 0 < margin < 1:
        raise ConfigError(f"{option}={margin}: give the equivalence margin of validation F1-macro, a number in "
                          "(0, 1) (0.01 = 1 point)")
    return float(margin)


@dataclass
class Recommendation:
    section: str
    dataset: str
    margin: float = MARGIN
    alpha: float = ALPHA
    samples: int = 0                      # (fold, seed) samples of the section's encoder results
    settings: int = 0                     # encoder settings ranked on validation
    resolved: bool | None = None          # None: one sample (unchecked); False: the lead is within the spread
    chosen: dict | None = None            # the leader on validation (named "chosen" only when resolved)
    contenders: list[dict] = field(default_factory=list)   # settings behind it by less than the spread
    cheapest: dict | None = None          # the cheapest setting shown equivalent (the leader when none is)
    unshown: dict | None = None           # the cheapest cheaper setting within the margin on average, not shown
    stl: dict | None = None               # STL of the leader's model: the cost reference
    baseline: dict | None = None          # the best classical baseline on validation
    power: dict | None = None             # can Table 8's tests reach significance (power.Power)
    incomplete: list[dict] = field(default_factory=list)  # settings with missing samples
    ranking: list[dict] = field(default_factory=list)     # every encoder setting, in ranking order
    skipped: str | None = None            # why there is no recommendation
    sentences: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    def markdown(self) -> list[str]:
        lines = ["### Recommendation", ""]
        for sentence in self.sentences or [f"No recommendation: {self.skipped}"]:
            lines += [sentence, ""]
        if self.ranking:
            lines += ranking_table(self) + [""]
        return lines[:-1]


def _num(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def _round(value) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), DIGITS)


def cost_key(item: dict) -> tuple:
    """Cheaper first: fewer models trained, fewer trained parameters (unknown: last), the architecture order,
    the smaller k, the name (as stats.best_setting within one architecture). Only facts of the setting, never
    measured time."""
    inf = float("inf")
    return (item["trainings"] if item["trainings"] is not None else inf,
            item["trainable_params"] if item["trainable_params"] is not None else inf,
            ARCH_RANK.get(item["arch"], len(ARCH_RANK)), item.get("k") if item.get("k") is not None else inf,
            item["name"])


def rank_key(item: dict) -> tuple:
    """Best first: the highest mean validation F1-macro (to DIGITS digits), then cost_key."""
    val = item["val_f1_macro"]
    return (-val if val is not None else float("inf"), *cost_key(item))


def describe(uri: str | None, frame: pd.DataFrame, sid: str, runs: pd.DataFrame, section_samples: int) -> dict:
    """Setting `sid` as the recommendation reports it: its validation F1-macro over its own samples (mean, std,
    range), the samples it lacks, its test F1-macro with the interval the report prints
    (intervals.setting_interval), and its cost (models, trained parameters: never seconds, which differ from
    run to run of the same study)."""
    row = frame.loc[sid]
    mine = runs[runs.sid == sid]
    val = mine[VAL].dropna()
    test = mine[mine[TEST].notna()]
    ci = setting_interval(uri, test) if len(test) else None
    k = pd.to_numeric(mine.k, errors="coerce").mean() if "k" in mine else np.nan
    return {"name": row["name"], "sid": sid, "arch": row.arch, "model": row.model, "setting": row.setting,
            "k": _num(k),
            "samples": int(len(val)), "missing": max(section_samples - int(len(val)), 0) if len(val) else 0,
            "val_f1_macro": _round(val.mean()) if len(val) else None,
            "val_std": _round(val.std(ddof=1)) if len(val) > 1 else None,
            "val_range": [_round(val.min()), _round(val.max())] if len(val) else None,
            "test_f1_macro": _round(test[TEST].mean()) if len(test) else None,
            "test_ci95": [_round(ci.low), _round(ci.high)] if ci else None,
            "test_interval": {**ci.to_json(), "low": _round(ci.low), "high": _round(ci.high)} if ci else None,
            "test_interval_text": ci.text() if ci else None, "test_n": int(len(test)),
            "trainings": _num(row.trainings), "trainable_params": _num(row.trainable_params)}


def recommend(runs: pd.DataFrame, section: str, dataset: str, margin: float = MARGIN,
              uri: str | None = None) -> Recommendation:
    """The section's recommendation. `uri`: the store, for the predictions a one-split interval is bootstrapped
    from (without it, one sample gets no interval)."""
    rec = Recommendation(section, dataset, margin)
    runs = with_ids(runs)
    encoders = runs[~runs.arch.map(is_baseline) & runs[VAL].notna()]
    if encoders.empty:
        rec.skipped = ("no encoder result in this section has a validation F1-macro (val_best/f1_macro), and "
                       "nothing is chosen on test.")
        return rec
    rec.samples = len(encoders[PAIR].drop_duplicates())
    frame = settings_frame(runs).set_index("sid")
    items = {sid: describe(uri, frame, sid, runs, rec.samples) for sid in sorted(encoders.sid.unique())}
    rec.settings = len(items)
    most = max(item["samples"] for item in items.values())
    complete = [item for item in items.values() if item["samples"] == most]
    leader = min(complete, key=rank_key)
    rec.chosen = leader
    rec.incomplete = sorted((item for item in items.values() if item["missing"]), key=rank_key)
    rec.ranking = sorted(complete, key=rank_key) + [i for i in rec.incomplete if i["samples"] < most]
    leader_rows = encoders[encoders.sid == leader["sid"]]
    val_ratio = split_ratio(encoders, "val")
    for item in items.values():
        if item is leader:
            continue
        pairs = paired(leader_rows, encoders[encoders.sid == item["sid"]], VAL)
        gaps = (pairs.a - pairs.b).to_numpy()
        test = equivalence(gaps, margin, val_ratio)
        spread = float(gaps.std(ddof=1)) if len(gaps) > 1 else math.nan
        item.update(pairs=int(len(pairs)), val_gap=_round(gaps.mean()) if len(gaps) else None,
                    gap_std=_round(spread), tost_p=_round(test["p"]), gap_upper=_round(test["upper"]),
                    gap_lower=_round(test["lower"]), equivalent=test["equivalent"], needed=test["needed"],
                    within_spread=bool(len(gaps) > 1 and round(gaps.mean(), DIGITS) <= round(spread, DIGITS)))
    if most >= 2:
        rec.contenders = [i for i in sorted(complete, key=rank_key) if i is not leader and i["within_spread"]]
        rec.resolved = not rec.contenders
    cheaper = sorted((i for i in items.values() if i is not leader and cost_key(i) < cost_key(leader)), key=cost_key)
    shown = [i for i in cheaper if i["equivalent"]]
    rec.cheapest = shown[0] if shown else leader
    if not shown:
        close = [i for i in cheaper if i["pairs"] and i["val_gap"] is not None and abs(i["val_gap"]) <= margin]
        rec.unshown = close[0] if close else None
    stl = frame[(frame.arch == "stl") & (frame.model == leader["model"])]
    if len(stl):
        rec.stl = describe(uri, frame, stl.index[0], runs, rec.samples)
    baselines = frame[frame.baseline & frame[VAL].notna()]
    if len(baselines):
        top = min(baselines.index, key=lambda s: (-round(float(baselines.loc[s, VAL]), DIGITS), s))
        rec.baseline = describe(uri, frame, top, runs, rec.samples)
    if (power := section_power(runs)) is not None:
        rec.power = power.to_json()
    rec.sentences = sentences(rec, uncompared=[i for i in cheaper if not i["pairs"]])
    return rec


def _n(count: int, word: str) -> str:
    """'1 fold', '2 folds'."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def _nan(value) -> float:
    return np.nan if value is None else value


def _points(value: float) -> str:
    return f"{value:g} point" + ("" if value == 1 else "s")


def _score(value) -> str:
    return f"{value:.3f}" if value is not None else "—"


def _ci(item: dict) -> str:
    if item["test_interval_text"]:
        return item["test_interval_text"]
    if item["test_n"] == 1:
        return "one sample and no saved test predictions in the store: no interval"
    return "no interval"


def _val(item: dict) -> str:
    """'0.800 ± 0.012 (range 0.785 to 0.812) over its 6 samples'."""
    if item["samples"] < 2:
        return f"{item['val_f1_macro']:.3f} (one sample)"
    low, high = item["val_range"]
    return (f"{item['val_f1_macro']:.3f} ± {item['val_std']:.3f} (range {low:.3f} to {high:.3f}) over its "
            f"{item['samples']} samples")


def _missing(item: dict, total: int) -> str:
    return f" ⚠ {item['missing']} of {total} samples missing" if item["missing"] else ""


def _cost(item: dict, stl: dict | None) -> str:
    """'3 models per result (68.1M trainable parameters): 3 instead of STL's 19 (431M)'; unknown counts are
    shown as —, never guessed. Compute seconds are in Table 7: they differ between runs of the same study."""
    models = fmt_count(_nan(item["trainings"]))
    text = (f"{models} model{'s' if item['trainings'] != 1 else ''} per result "
            f"({fmt_params(_nan(item['trainable_params']))} trainable parameters)")
    if stl is None:
        return text + f"; no STL result of {item['model']} to compare with"
    if item["arch"] == "stl":
        return text + ", which is STL itself"
    return (text + f": {models} instead of STL's {fmt_count(_nan(stl['trainings']))} "
            f"({fmt_params(_nan(stl['trainable_params']))})")


def _leader(rec: Recommendation) -> str:
    lead, n = rec.chosen, rec.samples
    stl = rec.stl if rec.stl and rec.stl["model"] == lead["model"] else None
    tail = (f"Its test F1-macro is {_score(lead['test_f1_macro'])} ({_ci(lead)}). It trains {_cost(lead, stl)}."
            + (f" ⚠ It lacks {lead['missing']} of the {n} (fold, seed) samples (failed or missing jobs): no "
               "setting has them all; rerun the same command to train the missing jobs." if lead["missing"] else ""))
    of = f"Of the {rec.settings} encoder settings, it has" if rec.settings > 1 else "It is the only encoder setting:"
    if rec.resolved is None:
        return (f"**Leading on validation, unchecked (one sample): {lead['name']}.** {of} the highest validation "
                f"F1-macro, {_val(lead)}. {tail} ⚠ With one sample this ranking is unchecked: how far each "
                "setting's score moves with the training seed is unknown, and it can be more than the gaps between "
                "settings (up to 27 points on one corpus). Check it before relying on it: rerun with more seeds "
                "(study.seeds=[42,43,44], or seed=42,43,44 for mtlv.train), or with study.confirm=2, which retrains "
                "the leading settings on fresh seeds.")
    if rec.resolved:
        return (f"**Chosen on validation: {lead['name']}.** {of} the highest mean validation F1-macro, "
                f"{_val(lead)}; every other setting trails it by more than the spread of their gap (its standard "
                f"deviation over the samples both have). {tail}")
    names = "; ".join(f"{c['name']}, {c['val_f1_macro']:.3f} ({100 * c['val_gap']:.2f} points behind, spread of "
                      f"the gap {100 * c['gap_std']:.2f})" for c in rec.contenders[:5])
    more = f"; and {len(rec.contenders) - 5} more" if len(rec.contenders) > 5 else ""
    return (f"**Not resolved on validation: {lead['name']} leads, but within the seed-to-seed spread.** {of} the "
            f"highest mean validation F1-macro, {_val(lead)}, but {names}{more} trail it by no more than the "
            "spread of their gap (its standard deviation over the samples both have): another set of seeds could "
            f"order them differently, so no setting is chosen. {tail} To resolve it, add seeds (study.seeds=[...]) or "
            "run "
            "study.confirm=N.")


def _equivalent(rec: Recommendation, margin: str) -> str:
    cheap, lead = rec.cheapest, rec.chosen
    side = "below" if cheap["val_gap"] >= 0 else "above"
    return (f"**Cheapest equivalent on validation: {cheap['name']}.** Its mean validation F1-macro is "
            f"{abs(100 * cheap['val_gap']):.2f} points {side} {lead['name']}'s over their {cheap['pairs']} paired "
            f"samples, and equivalence within ±{margin} is shown: two one-sided tests (TOST) with the corrected "
            f"resampled t give p = {cheap['tost_p']:.3g} (< {rec.alpha:g}); the {100 * (1 - 2 * rec.alpha):g}% "
            f"interval of the gap is {100 * cheap['gap_lower']:+.2f} to {100 * cheap['gap_upper']:+.2f} points. Its "
            f"test F1-macro is {_score(cheap['test_f1_macro'])} ({_ci(cheap)}). It trains {_cost(cheap, rec.stl)}.")


def _shared(pairs: int) -> str:
    return "its one paired sample does" if pairs == 1 else f"its {pairs} paired samples do"


def _not_shown(rec: Recommendation, margin: str, uncompared: list[dict]) -> str:
    close, lead = rec.unshown, rec.chosen
    if close is None:
        text = (f"**No cheaper equivalent.** No setting that trains fewer models or parameters than {lead['name']} "
                f"is within {margin} of it on validation on average.")
    else:
        text = (f"**No cheaper setting is shown equivalent.** {close['name']} trains less and is on average "
                f"{100 * close['val_gap']:.2f} points below {lead['name']} on validation, within the margin of "
                f"{margin}, but {_shared(close['pairs'])} not show it")
        if close["pairs"] < 2:
            text += (": one pair has no spread, so equivalence cannot be shown. At least 2 paired samples are "
                     "needed, and how many depends on their spread (the report says once it has them).")
        else:
            text += (f" (TOST p = {close['tost_p']:.3g}; the {100 * (1 - 2 * rec.alpha):g}% interval of the gap "
                     f"reaches {100 * close['gap_upper']:+.2f} points). ")
            text += (f"About {close['needed']} paired samples with this spread would." if close["needed"] else
                     "At this spread no number of samples would: the folds' overlap keeps the corrected interval "
                     "wider than the margin (a wider study.margin, or a setting with less spread).")
    if uncompared:
        text += " " + "; ".join(f"{i['name']} shares 0 (fold, seed) samples with {lead['name']}: not compared"
                                for i in uncompared) + "."
    return text


def sentences(rec: Recommendation, uncompared: list[dict] = ()) -> list[str]:
    margin = _points(100 * rec.margin)
    out = [_leader(rec)]
    if rec.cheapest is not rec.chosen:
        out.append(_equivalent(rec, margin))
    elif rec.settings > 1:
        out.append(_not_shown(rec, margin, list(uncompared)))
    behind = [i for i in rec.incomplete if i is not rec.chosen]
    if behind:
        beats = [i for i in behind if i.get("val_gap") is not None and i["val_gap"] < 0]
        lacking = "; ".join(f"{i['name']} ({i['samples']} of {rec.samples})" for i in behind)
        out.append(f"**⚠ Missing samples:** {lacking} "
                   "lack (fold, seed) samples (failed or missing jobs); each comparison uses only the samples both "
                   "settings have, and a setting with fewer samples is not chosen over a complete one. Rerun the "
                   "same command to train the missing jobs."
                   + "".join(f" {i['name']} scores {abs(100 * i['val_gap']):.2f} points above {rec.chosen['name']} on "
                             f"validation over the {i['pairs']} sample{'s' if i['pairs'] != 1 else ''} they share."
                             for i in beats))
    if rec.baseline is not None:
        base, diff = rec.baseline, 100 * (rec.baseline["val_f1_macro"] - rec.chosen["val_f1_macro"])
        text = (f"The best classical baseline on validation, {base['name']}, has validation F1-macro "
                f"{base['val_f1_macro']:.3f} ({diff:+.2f} points against {rec.chosen['name']}; test "
                f"{_score(base['test_f1_macro'])}).")
        if diff >= 0:
            text = ("**⚠ " + text[:-1] + ": no encoder setting beats it on validation.** Check the training "
                    "budget (epochs, learning rate, max length) before trusting the encoder results.")
        out.append(text)
    if rec.power is not None:
        out.append(Power(rec.power["samples"], rec.power["tests"], rec.power["folds"]).sentence()
                   + " (Table 8.)")
    out.append("Nothing here is chosen on test: settings are ranked on validation F1-macro, and test F1-macro is "
               "reported only. Each comparison pairs the (fold, seed) samples both settings have.")
    return out


def ranking_table(rec: Recommendation) -> list[str]:
    """Every encoder setting in ranking order: validation mean, spread (std and range over samples), samples
    (⚠ where some are missing), test F1-macro and the interval the report prints."""
    lines = ["| Setting | Samples | Val. F1-macro | Val. std | Val. range | Test F1-macro | Test interval |",
             "|---|---|---|---|---|---|---|"]
    for item in rec.ranking:
        low_high = item["val_range"]
        rng = f"{low_high[0]:.3f}–{low_high[1]:.3f}" if item["samples"] > 1 else "—"
        std = f"{item['val_std']:.3f}" if item["val_std"] is not None else "—"
        ci = item["test_ci95"]
        shown = f"{ci[0]:.3f}–{ci[1]:.3f}" if ci else "—"
        test = f"{item['test_f1_macro']:.3f}" if item["test_f1_macro"] is not None else "—"
        mark = " (leader)" if item is rec.chosen else ""
        lines.append(f"| {item['name']}{mark} | {item['samples']}{_missing(item, rec.samples)} | "
                     f"{item['val_f1_macro']:.3f} | {std} | {rng} | {test} | {shown} |")
    methods = sorted({i["test_interval"]["method"] for i in rec.ranking if i["test_interval"]})
    lines += ["", "Ranking on validation (best first; ties: fewer models, fewer parameters, MTL, GMHL, GMTL, STL, "
              "smaller k, name). Val. std and range: the spread over (fold, seed) samples. Test interval: 95%, "
              + (", ".join(methods) if methods else "none (one sample without saved predictions)") + "."]
    return lines
