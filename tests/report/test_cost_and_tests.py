"""Tables 7-9 on known numbers: Pareto frontier and Holm against hand-made examples, the cost table, the tests
against STL/MTL and the per-label gains on rec_store.py's store (3 folds x 2 seeds)."""
from __future__ import annotations

import numpy as np
import pytest
from report import rec_store
from report.rec_store import LABELS, SETTINGS, name_of
from scipy import stats

from mtlv.report.collect import collect
from mtlv.report.cost import cost_table
from mtlv.report.label_gains import label_gains_table
from mtlv.report.settings import pareto
from mtlv.report.significance import holm, significance_table

IDX = [i for i, _, _ in rec_store.samples(**rec_store.FULL)]


def test_pareto_frontier_of_a_hand_made_example():
    #          A     B     C     D     E     F     G       H     I
    cost = [10.0, 20.0, 30.0, 20.0, 5.0, 40.0, np.nan, 40.0, 50.0]
    score = [0.70, 0.80, 0.75, 0.78, 0.60, 0.90, 0.99, 0.90, 0.90]
    # C: B costs less and scores more; D: same cost as B, lower score; I: F scores the same for less;
    # G: unknown cost; F and H are equal, so neither is better than the other
    assert pareto(cost, score).tolist() == [True, True, False, False, True, True, False, True, False]
    order = [8, 3, 0, 6, 2, 5, 1, 7, 4]                                      # any order: same answer per point
    assert pareto(np.take(cost, order), np.take(score, order)).tolist() == np.take(
        [True, True, False, False, True, True, False, True, False], order).tolist()


def test_holm_against_hand_computed_values():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> kept non-decreasing: 0.06
    assert holm([0.01, np.nan, 0.04, 0.03, 0.005]) == pytest.approx([0.03, np.nan, 0.06, 0.06, 0.02], nan_ok=True)
    assert holm([0.5, 0.6]).tolist() == [1.0, 1.0]                               # 0.5 x 2 = 1, capped
    assert holm([0.02, 0.02]).tolist() == [0.04, 0.04]
    assert holm([0.3]).tolist() == [0.3] and holm([]).tolist() == []


@pytest.fixture(scope="module")
def data(rec_full):
    return collect(rec_full)


@pytest.fixture(scope="module")
def runs(data):
    return data.runs


def test_cost_table(runs):
    table = cost_table(runs, "csv")
    shown = table.frame.set_index("Setting")
    assert list(shown.index) == [name_of(k) for k in ("baseline", "stl", "mtl", "gmhl", "gmtl-desc", "gmtl-label")]
    assert shown.Trainings.tolist() == ["6", "6", "1", "1", "3", "2"]        # num_groups; logreg: one per label
    assert shown["Trained parameters"].tolist() == ["6.0k", "136M", "22.7M", "22.7M", "68.1M", "45.4M"]
    assert shown["Compute per result (s)"].tolist() == ["2.0", "300.0", "60.0", "40.0", "150.0", "100.0"]
    test = SETTINGS["stl"][5][IDX]
    assert shown.loc["STL minilm", "Test F1-macro"] == f"{test.mean():.3f} ± {test.std(ddof=1):.3f}"
    # on (compute, test F1): the baseline is cheapest, GMHL best; every other setting costs more and scores less
    assert shown.Pareto.tolist() == ["✓", "", "", "✓", "", ""]


def test_every_setting_against_stl_and_mtl_with_holm(runs):
    table = significance_table(runs, "csv")
    raw = table.raw.set_index(["name", "against"])
    assert len(raw) == 7 and ("MTL minilm", "stl") in raw.index and ("MTL minilm", "mtl") not in raw.index
    gmhl, stl = (SETTINGS[k][5][IDX] for k in ("gmhl", "stl"))
    row = raw.loc[(name_of("gmhl"), "stl")]
    assert row.pvalue == pytest.approx(stats.wilcoxon(gmhl, stl).pvalue) == pytest.approx(2 / 2 ** 6)
    assert row.mean_diff == pytest.approx((gmhl - stl).mean()) and row.n == 6
    # 7 tests: the smallest p is multiplied by 7 -- 0.031 alone, 0.219 after Holm
    assert raw.holm_p.min() == pytest.approx(7 * raw.pvalue.min())
    # issue 29: p = 0.031 alone reads "not significant" as if it could have been; with 7 tests no row can pass
    # Holm (7 x 2 / 2**6 = 0.22), so every row says so, and the table's first note says how many samples would
    assert table.frame.loc[table.frame.Setting == name_of("gmhl"), "Note"].tolist() == [
        "⚠ cannot reach p < 0.05 after Holm with these tests"] * 2
    assert not table.raw.can_reach_holm.any() and table.raw.can_reach.all()
    assert table.notes[0].startswith("⚠ Power: 6 paired samples and 7 tests (Holm's correction)")
    assert "At least 9 paired samples would make it possible (3 seeds over the 3 folds" in table.notes[0]


def test_with_enough_samples_rows_can_pass_holm(tmp_path, empty_db):
    """4 folds x 3 seeds: 12 pairs, 7 x 2 / 2**12 < 0.05: no row is marked, and the clear differences pass."""
    runs = collect(rec_store.build(tmp_path / "store", empty_db)).runs
    table = significance_table(runs, "csv")
    assert table.raw.can_reach_holm.all() and table.notes[0].startswith("Power: 12 paired samples and 7 tests")
    row = table.raw.set_index(["name", "against"]).loc[(name_of("gmhl"), "stl")]
    assert row.holm_p < 0.05 and "⚠" not in " ".join(table.frame.Note)


def test_per_label_gains_against_stl(data):
    table = label_gains_table(data.runs, data.labels, "csv")
    frame = table.frame.set_index("Label")
    offsets = {k: dict(zip(LABELS, SETTINGS[k][6])) for k in SETTINGS}
    for key in ("mtl", "gmhl", "gmtl-desc"):                                   # GMTL at its validation choice
        column = f"Δ {name_of(key)}"
        for label in LABELS:
            diff = (SETTINGS[key][5][IDX] + offsets[key][label] - SETTINGS["stl"][5][IDX] - offsets["stl"][label])
            assert frame.loc[label, column] == f"{100 * diff.mean():+.1f}", (key, label)
    assert f"Δ {name_of('gmtl-label')}" not in frame.columns
    assert "GMHL minilm (label, k=3): gains on 6, loses on 0 of 6 labels" in "\n".join(table.notes)


def test_cost_plot_legend_is_outside_the_axes(runs, tmp_path):
    """The legend sits beside the axes, never over a point (inside, its corner hid the best settings)."""
    from matplotlib.transforms import Bbox

    from mtlv.report.plots import cost_figure, cost_plot

    raw = cost_table(runs, "csv").raw
    fig = cost_figure(raw, "csv: cost vs test F1-macro")
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()][-1] == "Pareto frontier"
    assert not Bbox.intersection(legend.get_window_extent(renderer), ax.get_window_extent(renderer))
    # saved with bbox_inches="tight": the PNG grows to hold the legend instead of cutting it off
    from matplotlib.image import imread

    png = cost_plot(raw, tmp_path / "cost.png", "csv: cost vs test F1-macro")
    right = legend.get_window_extent(renderer).x1 - ax.get_window_extent(renderer).x0
    assert imread(png).shape[1] >= right * 120 / fig.dpi


def test_a_setting_with_missing_samples_is_marked_in_the_tables(runs):
    from mtlv.report.reference import Reference
    from mtlv.report.study_tables import main_table

    failed = runs.drop(runs[(runs.arch == "mtl") & (runs.fold == 2) & (runs.seed == 43)].index)
    cost = cost_table(failed, "csv").frame.set_index("Setting")
    assert "MTL minilm ⚠ 1 missing" in cost.index and "STL minilm" in cost.index
    main = main_table(failed, "csv", Reference.load(), "val_f1_macro").frame
    assert main.loc[main.Architecture == "mtl", "n"].tolist() == ["5 ⚠ 1 missing"]
    assert main.loc[main.Architecture == "stl", "n"].tolist() == ["6"]
