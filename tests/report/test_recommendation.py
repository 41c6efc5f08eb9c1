"""The recommendation is right by construction (rec_store.py): it names the setting that is best on validation
(not the one best on test), the cheapest setting tied with it on validation (not the cheaper one that is clearly
worse), their test F1-macro with a 95% interval and their cost against STL; it warns when the study is too small
for any difference to reach p < 0.05, and only then. The report of a user's CSV dataset works whatever the store
lacks."""
from __future__ import annotations

import json

import numpy as np
import pytest
from report import rec_store
from report.rec_store import SETTINGS, name_of
from scipy import stats

from mtlv.config import compose
from mtlv.report.page import build_report


def report(uri, out, *extra):
    page = build_report(compose([f"tracking_uri={uri}", f"out={out}", "plots=false", *extra], config_name="report"))
    return page.read_text(), (out / "recommendation.md").read_text(), json.loads(
        (out / "recommendation.json").read_text())


FULL, SMALL = rec_store.FULL, rec_store.SMALL


def values(key, which, folds=FULL["folds"], seeds=FULL["seeds"]):
    """The validation or test values of a setting for the chosen samples."""
    idx = [i for i, _, _ in rec_store.samples(folds, seeds)]
    return SETTINGS[key][4 if which == "val" else 5][idx]


def ci_text(x) -> str:
    n = len(x)
    half = stats.t.ppf(0.975, n - 1) * np.std(x, ddof=1) / np.sqrt(n)
    return f"95% interval {x.mean() - half:.3f} to {x.mean() + half:.3f}, Student t over its {n} samples"


@pytest.fixture(scope="module")
def full(tmp_path_factory, rec_full):
    """The report of 3 folds x 2 seeds: 6 paired samples, enough for p < 0.05."""
    return (rec_full, *report(rec_full, tmp_path_factory.mktemp("rec-full-report")))


@pytest.fixture(scope="module")
def small(tmp_path_factory, empty_db):
    """2 folds x 1 seed, every setting."""
    return rec_store.build(tmp_path_factory.mktemp("rec-small") / "store", empty_db, **SMALL)


def test_the_construction_disagrees_between_validation_and_test():
    # independent of the code under test: choosing on test would name GMHL, on validation GMTL description-k3
    encoders = [k for k in SETTINGS if k != "baseline"]
    assert max(encoders, key=lambda k: values(k, "test").mean()) == "gmhl"
    assert max(encoders, key=lambda k: values(k, "val").mean()) == "gmtl-desc"


def test_chosen_on_validation_with_its_test_interval(full):
    _, page, md, rec = full
    chosen = values("gmtl-desc", "test")
    expected = (f"**Chosen on validation: {name_of('gmtl-desc')}.** Of the 5 encoder settings, it has the highest "
                f"mean validation F1-macro, {values('gmtl-desc', 'val').mean():.3f}, over the 6 (fold, seed) samples "
                f"they all share. Its test F1-macro is {chosen.mean():.3f} ({ci_text(chosen)}). It trains 3 models "
                "per result (68.1M trainable parameters, 150 s of compute): 3 instead of STL's 6, 0.50× STL's "
                "compute (300 s).")
    assert expected in md and expected in page
    section = rec["sections"][0]
    assert section["chosen"]["name"] == name_of("gmtl-desc") and section["samples"] == 6
    assert section["chosen"]["test_ci95"] == pytest.approx(
        list(stats.t.interval(0.95, 5, loc=chosen.mean(), scale=stats.sem(chosen))))
    assert name_of("gmhl") not in md.split("Cheapest")[0]             # the best on test is not chosen


def test_cheapest_tied_setting_and_its_cost_against_stl(full):
    _, page, md, rec = full
    gap = 100 * (values("gmtl-desc", "val") - values("mtl", "val")).mean()
    mtl = values("mtl", "test")
    expected = (f"**Cheapest equivalent on validation: {name_of('mtl')}.** Its mean validation F1-macro, "
                f"{values('mtl', 'val').mean():.3f}, is {gap:.2f} points below the chosen setting's over their 6 "
                "paired samples: within 1 point (the paired Wilcoxon test of validation F1-macro does separate them, "
                f"p = {stats.wilcoxon(values('mtl', 'val'), values('gmtl-desc', 'val')).pvalue:.3g}, but by less "
                f"than 1 point). Its test F1-macro is {mtl.mean():.3f} ({ci_text(mtl)}). It trains 1 model per "
                "result (22.7M trainable parameters, 60 s of compute): 1 instead of STL's 6, 0.20× STL's compute "
                "(300 s).")
    assert expected in md
    cheapest = rec["sections"][0]["cheapest"]
    assert cheapest["name"] == name_of("mtl") and cheapest["within"] and not cheapest["indistinguishable"]
    # GMHL costs less (40 s) but is 10 points worse on validation, and significantly so: never the answer
    assert name_of("gmhl") not in md.split("Nothing here")[0].split("Cheapest")[1]
    assert "too small" not in md                                          # 6 samples can reach p < 0.05
    assert "Nothing here is chosen on test" in md


def test_a_study_too_small_says_so_and_what_would_fix_it(small, tmp_path):
    _, md, rec = report(small, tmp_path / "report")
    assert ("**⚠ This study is too small for any difference to reach p < 0.05.** The settings share 2 (fold, seed) "
            "samples (2 folds × 1 seed); with so few pairs a two-sided Wilcoxon signed-rank test cannot give p "
            "below 0.5, so \"indistinguishable\" here only means \"within 1 point\". At least 6 paired samples are "
            "needed: repeat the 2 folds with 3 seeds (e.g. seed=42,43,44) or use 6 folds (split.folds=6), then "
            "rerun the report.") in md
    section = rec["sections"][0]
    assert section["too_small"]["needed"] == 6 and section["too_small"]["min_p"] == pytest.approx(0.5)
    # without the power to separate anything, only the 1-point rule makes a tie: MTL, not the clearly worse GMHL
    assert section["chosen"]["name"] == name_of("gmtl-desc") and section["cheapest"]["name"] == name_of("mtl")
    assert "too few pairs for a Wilcoxon test to separate them" in md


def test_one_sample_no_stl_no_parameters(tmp_path, empty_db):
    """A stopped study: fold 0 of 4 only, no STL, no baseline, trainable parameters never recorded."""
    uri = rec_store.build(tmp_path / "store", empty_db, folds=(0,), seeds=(42,), n_folds=4,
                          only=("gmtl-desc", "mtl", "gmhl"), params_for=())
    page, md, rec = report(uri, tmp_path / "report")
    assert "(one sample: no interval)" in md and "no STL result of minilm to compare with" in md
    assert "? trainable parameters" not in md and "(— trainable parameters, 60 s of compute)" in md
    assert "run the remaining 3 of the 4 folds" in md
    assert "Table 9 (per-label gains vs STL): no STL result" in page
    assert "| MTL minilm | 1 | — | 60.0 |" in page                  # table 7: never a guessed count


ARCH = "params.`arch.name`"


@pytest.mark.parametrize("where, missing", [
    (f"{ARCH} != 'mtl'", "Tables 3 and 4 (GMTL vs MTL): they need both MTL and GMTL results"),
    (f"{ARCH} != 'mtl' and {ARCH} != 'stl' and {ARCH} != 'gmtl'",
     "Table 8 (tests against STL and MTL): no setting has an STL or MTL result of its model"),
    (f"{ARCH} = 'baseline-tfidf-logreg'", "No recommendation: no encoder result in this section has a validation"),
], ids=["no-mtl", "gmhl-only", "baseline-only"])
def test_a_store_lacking_architectures_reports_what_it_can(small, tmp_path, where, missing):
    page, _, _ = report(small, tmp_path / "report", "plots=true", f'filter="{where}"')
    assert missing in page
    assert page.startswith("# MTLV report: csv\n") and "reference study's tables" not in page
    assert "csv: no published numbers to compare with" in page and "Rahimi" not in page
    assert (tmp_path / "report" / "report.html").stat().st_size > 1000


def frame(val_b) -> "pd.DataFrame":
    """GMTL (3 models, 150 s) and MTL (1 model, 60 s) on 4 folds x 2 seeds, rows shuffled; MTL's validation
    F1-macro is GMTL's + `val_b` per sample."""
    import pandas as pd

    samples = [(f, s) for s in (1, 2) for f in range(4)]
    base = 0.8 + 0.01 * np.arange(8)
    rows = [{"arch": arch, "model": "m", "setting": setting, "fold": f, "seed": s, "folds": 4,
             "val_f1_macro": base[i] + (val_b[i] if arch == "mtl" else 0.0), "f1_macro": 0.7,
             "trainings": n, "trainable_params": np.nan, "compute_s": sec}
            for arch, setting, n, sec in (("gmtl", "label-k3", 3.0, 150.0), ("mtl", "", 1.0, 60.0))
            for i, (f, s) in enumerate(samples)]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)


def test_indistinguishable_but_more_than_one_point_is_a_tie_too():
    from mtlv.report.recommend import recommend

    diff = np.array([-0.05, 0.03, -0.04, 0.02, -0.06, 0.01, -0.03, 0.02])       # mean -1.25 points, mixed signs
    p = stats.wilcoxon(diff).pvalue
    assert p > 0.05
    rec = recommend(frame(diff), "s", "d")
    assert rec.chosen["name"] == "GMTL m (label, k=3)" and rec.cheapest["name"] == "MTL m"
    assert (f"is 1.25 points below the chosen setting's over their 8 paired samples: more than 1 point, but the "
            f"paired Wilcoxon test of validation F1-macro does not separate them (p = {p:.3g})") in rec.sentences[1]
    assert "trainable parameters" in rec.sentences[1] and "(— trainable parameters, 60 s of compute)" in rec.sentences[1]
    wider = recommend(frame(diff), "s", "d", tolerance=0.02)
    assert f"within 2 points, and the paired Wilcoxon test of validation F1-macro does not separate them (p = {p:.3g})" \
        in wider.sentences[1]
    # consistently 1.25 points lower: separated by the test and outside the tolerance -> no cheaper equivalent
    worse = recommend(frame(np.full(8, -0.0125) - 0.001 * np.arange(8)), "s", "d")
    assert worse.cheapest is worse.chosen and worse.sentences[1].startswith("**No cheaper equivalent.**")


@pytest.mark.parametrize("value", ["2", "-0.01", "abc"])
def test_a_bad_tolerance_is_one_error_before_any_work(tmp_path, value):
    from mtlv.errors import ConfigError

    with pytest.raises(ConfigError, match=f"tolerance={value}: give the validation F1-macro gap counted as a tie"):
        build_report(compose([f"tracking_uri=sqlite:///{tmp_path}/none.db", f"out={tmp_path}/report",
                              f"tolerance={value}"], config_name="report"))
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "report").exists()
