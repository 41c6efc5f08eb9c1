""""Did it hold?" from fresh seeds (mtlv/report/confirm.py), on hand-made results whose answers are known."""
from __future__ import annotations

import pandas as pd
import pytest

from mtlv.report.confirm import held, markdown


def item(arch: str, setting: str = "", **more) -> dict:
    name = f"{arch.upper()} tiny" + (f" ({setting})" if setting else "")
    return {"arch": arch, "model": "tiny", "setting": setting, "name": name, **more}


def rows(arch: str, setting: str, tests: list[float], vals: list[float], seeds: list[int]) -> list[dict]:
    return [{"dataset": "csv", "arch": arch, "model": "tiny", "setting": setting, "fold": 0, "seed": s,
             "f1_macro": t, "val_f1_macro": v} for s, t, v in zip(seeds, tests, vals)]


SECTION = {"section": "csv", "dataset": "csv", "tolerance": 0.01,
           "chosen": item("gmtl", "cooccurrence-k2", test_f1_macro=0.70, test_ci95=[0.65, 0.75]),
           "cheapest": item("mtl", test_f1_macro=0.69, test_ci95=[0.60, 0.72]),
           "stl": None, "baseline": None}
SETTINGS = [("recommended", SECTION["chosen"]), ("cheapest equivalent", SECTION["cheapest"]), ("STL", item("stl"))]
STUDY = pd.DataFrame(rows("gmtl", "cooccurrence-k2", [0.70], [0.71], [42]) + rows("mtl", "", [0.69], [0.705], [42])
                     + rows("stl", "", [0.60], [0.60], [42]))


def test_rank_gap_intervals_and_a_cheapest_claim_that_holds():
    fresh = pd.DataFrame(rows("gmtl", "cooccurrence-k2", [0.72, 0.80], [0.70, 0.74], [43, 44])
                         + rows("mtl", "", [0.70, 0.66], [0.695, 0.735], [43, 44])
                         + rows("stl", "", [0.74, 0.70], [0.6, 0.6], [43, 44]))
    out = held(SECTION, SETTINGS, fresh, STUDY)
    # means: gmtl 0.76, stl 0.72, mtl 0.68 -> rank 1 of 3, 4 points ahead of STL
    assert (out["rank"], out["of"], out["best_other"]) == (1, 3, "STL tiny")
    assert out["gap"] == pytest.approx(0.04)
    chosen, cheapest, stl = out["settings"]
    assert [f["inside"] for f in chosen["fresh"]] == [True, False]     # 0.72 in [0.65, 0.75]; 0.80 above
    assert [f["inside"] for f in cheapest["fresh"]] == [True, True]
    assert [f["inside"] for f in stl["fresh"]] == [None, None]          # the report printed none for STL
    assert chosen["original_test"] == pytest.approx(0.70) and stl["original_test"] == pytest.approx(0.60)
    # validation gaps 0.005 and 0.005: within 1 point
    assert out["cheapest"]["holds"] is True and out["cheapest"]["val_gap"] == pytest.approx(0.005)
    text = "\n".join(markdown([out], [43, 44]))
    assert "rank 1 of 3" in text and "3 of 4 fresh results fall inside" in text and "the claim **holds**" in text


def test_a_recommendation_that_did_not_hold():
    fresh = pd.DataFrame(rows("gmtl", "cooccurrence-k2", [0.60], [0.70], [43])
                         + rows("mtl", "", [0.66], [0.68], [43]) + rows("stl", "", [0.70], [0.6], [43]))
    out = held(SECTION, SETTINGS, fresh, STUDY)
    assert (out["rank"], out["best_other"]) == (3, "STL tiny") and out["gap"] == pytest.approx(-0.10)
    assert out["cheapest"]["holds"] is False and out["cheapest"]["val_gap"] == pytest.approx(0.02)  # 2 > 1 point
    text = "\n".join(markdown([out], [43]))
    assert "it is no longer the best" in text and "the claim **does not hold**" in text


def test_a_tie_shares_the_rank():
    fresh = pd.DataFrame(rows("gmtl", "cooccurrence-k2", [0.70], [0.70], [43])
                         + rows("mtl", "", [0.70], [0.70], [43]) + rows("stl", "", [0.60], [0.6], [43]))
    out = held(SECTION, SETTINGS, fresh, STUDY)
    assert (out["rank"], out["gap"]) == (1, 0)
    assert "it is still the best, tied" in "\n".join(markdown([out], [43]))


def test_no_fresh_sample_in_common_leaves_the_claim_unchecked():
    fresh = pd.DataFrame(rows("gmtl", "cooccurrence-k2", [0.60], [0.70], [43]) + rows("mtl", "", [0.66], [0.68], [44]))
    out = held(SECTION, SETTINGS[:2], fresh, STUDY)
    assert out["cheapest"] == {"name": "MTL tiny", "pairs": 0, "holds": None}
    assert "the claim is unchecked" in "\n".join(markdown([out], [43, 44]))
