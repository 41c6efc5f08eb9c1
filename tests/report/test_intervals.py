"""The intervals the report prints cover what they claim, by simulation (issue 29: the Student t interval over
3 folds x 2 seeds covered the true expected F1 in about 69% of repeats), and the power arithmetic of Holm's
correction matches hand-computed values. A least-squares classifier on synthetic multi-label data stands in for
a trained model: cheap enough for hundreds of repeats in seconds."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from mtlv.report.intervals import BOOTSTRAP, NADEAU_BENGIO, bootstrap_f1_macro, corrected_t, f1_macro_of_counts
from mtlv.report.power import Power, plan_power, reachable, samples_for

FEATURES, LABELS = 6, 3
WEIGHTS = np.random.default_rng(0).normal(size=(FEATURES, LABELS))
CUTS = np.array([0.8, 1.2, 0.3])                    # three label frequencies, one of them rare-ish


def draw(rng, n):
    x = rng.normal(size=(n, FEATURES))
    return x, (x @ WEIGHTS + rng.normal(scale=1.5, size=(n, LABELS)) > CUTS).astype(int)


def fit(x, y):
    return np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)[0]


def predict(beta, x):
    return (np.c_[x, np.ones(len(x))] @ beta >= 0.5).astype(int)


def f1_macro(pred, true) -> float:
    return float(f1_macro_of_counts(np.ones((1, len(true))), pred, true)[0])


@pytest.fixture(scope="module")
def population():
    rng = np.random.default_rng(1)
    return draw(rng, 20_000)


def test_corrected_t_covers_the_expected_f1_of_cross_validation_and_the_naive_t_does_not(population):
    rng = np.random.default_rng(2)
    n, folds, seeds = 150, 3, 2
    n_train = n - n // folds
    big_x, big_y = population
    # the target: the expected F1-macro of the classifier trained on n_train documents of this distribution
    truth = np.mean([f1_macro(predict(fit(*draw(rng, n_train)), big_x), big_y) for _ in range(400)])
    covered = {"corrected": 0, "naive": 0}
    repeats = 250
    for _ in range(repeats):
        x, y = draw(rng, n)
        scores = []
        for _ in range(seeds):                     # 3 folds x 2 seeds: 6 overlapping samples
            order = rng.permutation(n)
            for k in range(folds):
                test = order[k::folds]
                train = np.setdiff1d(order, test)
                scores.append(f1_macro(predict(fit(x[train], y[train]), x[test]), y[test]))
        printed = corrected_t(scores, (n // folds) / n_train)
        assert printed.method == NADEAU_BENGIO and 0 <= printed.low <= printed.high <= 1
        covered["corrected"] += printed.low <= truth <= printed.high
        low, high = stats.t.interval(0.95, len(scores) - 1, loc=np.mean(scores), scale=stats.sem(scores))
        covered["naive"] += low <= truth <= high
    coverage = {k: v / repeats for k, v in covered.items()}
    assert coverage["corrected"] >= 0.90, coverage
    assert coverage["naive"] < 0.85, coverage       # the interval the report printed before: far below 95%


def test_bootstrap_covers_the_f1_of_the_one_trained_model(population):
    """One split: the interval is over test documents, so its target is the population F1-macro of the model
    that was trained (the training seed's spread is not in it, and the report says so)."""
    rng = np.random.default_rng(3)
    big_x, big_y = population
    covered, repeats = 0, 200
    for _ in range(repeats):
        x, y = draw(rng, 300)
        beta = fit(x[:200], y[:200])
        printed = bootstrap_f1_macro(predict(beta, x[200:]), y[200:])
        assert printed.method == BOOTSTRAP and printed.n == 100
        covered += printed.low <= f1_macro(predict(beta, big_x), big_y) <= printed.high
    assert covered / repeats >= 0.90


def test_intervals_are_clipped_and_need_two_samples():
    wide = corrected_t([0.2, 0.98], 0.5)
    assert wide.low == 0.0 and wide.high == 1.0                     # never "0.115 to 1.385"
    assert corrected_t([0.7], 0.5) is None
    seeded = bootstrap_f1_macro(np.eye(3, dtype=int).repeat(5, 0), np.eye(3, dtype=int).repeat(5, 0))
    assert (seeded.low, seeded.high) == (1.0, 1.0)


def test_power_after_holm_against_hand_computed_values():
    # issue 29: 6 samples, 2 tests: the best Holm p is 2 x 2/64 = 0.0625; OHSUMED's 9 samples, 75 tests: 0.29
    assert Power(6, 1).can_reach and Power(6, 1).best_holm_p == pytest.approx(0.03125)
    assert not Power(6, 2).can_reach and Power(6, 2).best_holm_p == pytest.approx(0.0625)
    assert Power(9, 75).best_holm_p == pytest.approx(75 * 2 / 512) and not Power(9, 75).can_reach
    assert samples_for(129) == 13 and 129 * 2 / 2 ** 13 < 0.05 <= 129 * 2 / 2 ** 12
    assert Power(6, 129, folds=3).sentence().endswith(
        "At least 13 paired samples would make it possible (5 seeds over the 3 folds: study.seeds=[...]).")
    # per row: with every test at its smallest p, which rows can Holm pass at all?
    assert reachable([2 / 2 ** 12, 2 / 2 ** 12, 2 / 2 ** 5]).tolist() == [True, True, False]
    assert reachable([2 / 2 ** 6] * 7).tolist() == [False] * 7   # 7 x 0.031 = 0.22: nothing passes the first step
    assert reachable([2 / 2 ** 10, 2 / 2 ** 6]).tolist() == [True, True]   # 0.0039 x 2, then 0.031 x 1


def test_the_plan_counts_the_reports_tests():
    """3 folds x 2 seeds; STL, MTL, GMHL at 2 settings, GMTL at 3: 7 settings; against STL 6 tests, against MTL 5."""
    sweeps = [SimpleNamespace(module="mtlv.baseline", overrides=("seed=1,2",)),
              SimpleNamespace(module="mtlv.train", overrides=("split.fold=0,1,2", "seed=1,2", "arch=stl,mtl"))]
    cells = {"stl": 1, "mtl": 1, "gmhl": 2, "gmtl": 3}
    jobs = [SimpleNamespace(sweep=1, arch=arch, cell=f"{arch}-{i}-{sample}")
            for arch, count in cells.items() for i in range(count) for sample in range(6)]
    jobs += [SimpleNamespace(sweep=0, arch="baseline", cell=f"b{sample}") for sample in range(6)]
    power = plan_power(SimpleNamespace(sweeps=sweeps, jobs=jobs))
    assert (power.samples, power.tests, power.folds) == (6, 11, 3) and not power.can_reach
    assert samples_for(11) == 9 and 11 * 2 / 2 ** 9 < 0.05 <= 11 * 2 / 2 ** 8
    assert "At least 9 paired samples would make it possible (3 seeds over the 3 folds" in power.sentence()


def test_the_ratio_is_the_documents_each_part_had_where_the_runs_logged_them():
    """A dataset's own split (OHSUMED's training/test folders: 114 test of 342) is not split.test_size's 0.2:
    the corrected t's n_test/n_train comes from the sizes each job logged (split.n_*), through the collected rows."""
    import pandas as pd

    from mtlv.report.collect import run_row
    from mtlv.report.intervals import split_ratio

    def run(n_train, n_test):
        params = {"arch.name": "mtl", "split.test_size": "0.2", "split.val_size": "0.15", "seed": "42",
                  "split.n_train": str(n_train), "split.n_val": "34", "split.n_test": str(n_test)}
        return SimpleNamespace(info=SimpleNamespace(run_id="r", run_name="mtl-tiny", start_time=0),
                               data=SimpleNamespace(tags={"arch": "mtl", "dataset": "ohsumed"}, params=params,
                                                    metrics={"test/f1_macro": 0.5}))

    rows = pd.DataFrame([run_row(run(194, 114)), run_row(run(194, 114))])
    assert split_ratio(rows, "test") == pytest.approx(114 / 194)
    assert split_ratio(rows, "val") == pytest.approx(34 / 194)
    # without recorded sizes (an older store): the split options, 0.2 held out, 0.15 of the rest for validation
    older = rows.drop(columns=["n_train", "n_val", "n_test"])
    assert split_ratio(older, "test") == pytest.approx(0.2 / (0.8 * 0.85))
