"""Statistics helpers: sample std, deterministic best setting, exact Wilcoxon (ties and zeros too) and its
small-n warning."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mtlv.report.stats import best_setting, min_two_sided_p, paired, summarize, wilcoxon


def test_summarize_uses_sample_std_and_ignores_missing():
    s = summarize([0.5, 0.7, np.nan])
    assert s == {"mean": pytest.approx(0.6), "std": pytest.approx(np.std([0.5, 0.7], ddof=1)), "n": 2}
    assert np.isnan(summarize([0.4])["std"]) and summarize([])["n"] == 0


def test_best_setting_by_validation_with_deterministic_ties():
    runs = pd.DataFrame({"setting": ["label-k3", "label-k3", "description-k4", "description-k2"],
                         "feature": ["label", "label", "description", "description"], "k": [3, 3, 4, 2],
                         "val_f1_macro": [0.8, 0.6, 0.7, 0.7], "f1_macro": [0.1, 0.1, 0.9, 0.2]})
    # label-k3, description-k4 and description-k2 all average 0.7 on validation: the smallest k wins
    assert best_setting(runs) == "description-k2"
    assert best_setting(runs, "f1_macro") == "description-k4"
    assert best_setting(runs.iloc[::-1]) == "description-k2"          # order of the store does not matter
    assert best_setting(runs.assign(val_f1_macro=np.nan)) is None    # no val metrics: never chosen on test
    assert best_setting(runs.iloc[0:0]) is None


def test_best_setting_never_ranks_a_setting_with_missing_samples_above_a_complete_one():
    # A grid stopped part-way: co-occurrence finished fold 2 only, an easy fold where it is below description
    # (0.90 vs 0.95). Its one-fold mean (0.90) is above description's four-fold mean (0.8375), but it lacks three
    # of the four samples: the complete setting is chosen (the report marks the other). Rows shuffled.
    runs = pd.DataFrame({"setting": ["description-k3"] * 4 + ["cooccurrence-k3"],
                         "feature": ["description"] * 4 + ["cooccurrence"], "k": [3] * 5,
                         "fold": [3, 2, 0, 1, 2], "seed": [7] * 5,
                         "val_f1_macro": [0.80, 0.95, 0.80, 0.80, 0.90]}).iloc[[4, 1, 3, 0, 2]]
    assert best_setting(runs) == "description-k3"
    # the same fold of another seed is another sample: still one sample against four
    assert best_setting(runs.assign(seed=[8, 7, 7, 7, 7])) == "description-k3"
    # every setting complete: the plain means decide (co-occurrence's other folds lift it above description)
    full = pd.concat([runs, pd.DataFrame({"setting": "cooccurrence-k3", "feature": "cooccurrence", "k": 3,
                                          "fold": [0, 1, 3], "seed": 7, "val_f1_macro": [0.90, 0.90, 0.90]})])
    assert best_setting(full) == "cooccurrence-k3"


def test_paired_matches_fold_and_seed():
    a = pd.DataFrame({"fold": [0, 1, 2, 0], "seed": [1, 1, 1, 2], "m": [0.1, 0.2, 0.3, 0.4]})
    b = pd.DataFrame({"fold": [2, 0, 0], "seed": [1, 2, 1], "m": [0.6, 0.7, 0.5]})
    pairs = paired(a, b, "m")
    assert pairs[["fold", "seed"]].values.tolist() == [[0, 1], [0, 2], [2, 1]]
    assert pairs.a.tolist() == [0.1, 0.4, 0.3] and pairs.b.tolist() == [0.5, 0.7, 0.6]


def test_best_setting_ties_go_to_fewer_models_then_parameters_never_seconds():
    # three settings tie on validation; the one with fewer models wins whatever the measured seconds say
    runs = pd.DataFrame({"setting": ["label-k4", "label-k3", "cooccurrence-k3"], "k": [4, 3, 3],
                         "fold": 0, "seed": 1, "val_f1_macro": [0.7, 0.7 + 1e-12, 0.7],
                         "trainings": [4.0, 3.0, 3.0], "trainable_params": [4e6, 3e6, 3e6],
                         "compute_s": [1.0, 900.0, 800.0]})
    assert best_setting(runs) == "cooccurrence-k3"                   # 3 models, 3M, k=3; then by name
    assert best_setting(runs.assign(compute_s=[900.0, 1.0, 2.0])) == "cooccurrence-k3"
    assert best_setting(runs.assign(trainable_params=[4e6, 2e6, 3e6])) == "label-k3"


@pytest.mark.parametrize("n", [6, 8, 12, 25])
def test_wilcoxon_is_scipys_exact_test_without_ties(n):
    rng = np.random.default_rng(n)
    x, y = rng.uniform(0.6, 0.9, n), rng.uniform(0.6, 0.9, n)
    res = wilcoxon(x, y)
    direct = stats.wilcoxon(x, y, method="exact")
    assert res["pvalue"] == pytest.approx(direct.pvalue, rel=1e-12) and res["statistic"] == direct.statistic
    assert res["n"] == n and res["method"] == "exact"


def test_wilcoxon_is_exact_with_zeros_and_ties():
    # issue 29: 14 pairs, 9 zero and 5 equal non-zero differences. scipy falls back to the normal approximation
    # (p = 0.025) beside a note that p cannot fall below 0.0625; the exact p is 2 / 2**5 = 0.0625.
    d = np.r_[np.zeros(9), np.full(5, 0.01)]
    assert stats.wilcoxon(d).pvalue < 0.05                              # the contradiction this fixes
    res = wilcoxon(d, np.zeros(14))
    assert res["pvalue"] == pytest.approx(0.0625) and res["min_p"] == pytest.approx(0.0625)
    assert res["note"].startswith("⚠ n=5") and res["method"] == "exact"
    # ties among non-zero differences: the p is the share of all 2**n sign flips at least as extreme,
    # enumerated here independently
    import itertools

    d = np.array([0.02, -0.01, 0.02, 0.03, 0.01, 0.02, -0.02, 0.04])
    ranks = stats.rankdata(np.abs(d))
    observed = ranks[d > 0].sum()
    sums = [sum(r for r, keep in zip(ranks, signs) if keep) for signs in itertools.product([0, 1], repeat=len(d))]
    centre = ranks.sum() / 2
    expected = np.mean([abs(t - centre) >= abs(observed - centre) - 1e-9 for t in sums])
    assert wilcoxon(d, np.zeros(len(d)))["pvalue"] == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(20))
def test_no_p_contradicts_its_note(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 26))
    d = rng.choice([0.0, 0.01, -0.01, 0.02, 0.03], size=n, p=[0.4, 0.3, 0.1, 0.1, 0.1])
    res = wilcoxon(d, np.zeros(n))
    assert res["pvalue"] >= res["min_p"] - 1e-12
    assert (res["pvalue"] < 0.05) == res["note"].startswith("significant")


def test_wilcoxon_small_n_cannot_be_significant():
    assert min_two_sided_p(5) == pytest.approx(0.0625) and min_two_sided_p(6) == pytest.approx(0.03125)
    five = wilcoxon([0.9] * 5, [0.1, 0.2, 0.3, 0.4, 0.5])              # every pair favours x: smallest p
    assert five["pvalue"] == pytest.approx(0.0625) and not five["can_reach"]
    assert five["note"].startswith("⚠ n=5 non-zero")
    six = wilcoxon([0.9] * 6, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert six["pvalue"] == pytest.approx(0.03125) and six["note"] == "significant at 0.05"
    assert wilcoxon([], [])["note"] == "no paired runs"
    assert wilcoxon([0.5, 0.6], [0.5, 0.6])["pvalue"] == 1.0


def test_tied_pairs_do_not_count_towards_n():
    # 7 pairs, 2 with zero difference: scipy ranks 5, so even 5 of one sign cannot reach 0.05 (2 / 2**5)
    x = [0.9, 0.8, 0.7, 0.7, 0.9, 0.6, 0.5]
    y = [0.1, 0.2, 0.7, 0.3, 0.9, 0.2, 0.1]
    res = wilcoxon(x, y)
    assert res["n"] == 7 and res["n_nonzero"] == 5 and res["min_p"] == pytest.approx(0.0625)
    assert res["pvalue"] == pytest.approx(0.0625) and not res["can_reach"]
    assert "2 tied pair(s) dropped" in res["note"] and res["note"].startswith("⚠")
    # 12 pairs (3 seeds x 4 folds) without ties can: 2 / 2**12
    assert min_two_sided_p(12) == pytest.approx(2 / 4096) and wilcoxon(np.arange(12.0) + 1, np.zeros(12))["can_reach"]
