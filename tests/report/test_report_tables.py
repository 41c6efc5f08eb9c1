"""Tables rendered from a store of known results: the numbers must be the ones put in."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from report.known_store import BASELINE, GMTL_DESC_DIFF, GMTL_LABEL_DIFF, LABELS, MTL
from scipy import stats

from mtlv.config import compose
from mtlv.report.collect import collect
from mtlv.report.page import build_report
from mtlv.report.per_label import label_table
from mtlv.report.reference import Reference
from mtlv.report.study_tables import grid_table, main_table, wilcoxon_table
from mtlv.report.timing import time_table


@pytest.fixture(scope="module")
def data(store):
    return collect(store)


@pytest.fixture(scope="module")
def main_study(data):
    return data.runs[(data.runs.dataset == "openi") & data.runs.study.str.startswith("folds=3")]


def row(raw, arch, model):
    hit = raw[(raw.arch == arch) & (raw.model == model)]
    assert len(hit) == 1, (arch, model, raw[["arch", "model"]])
    return hit.iloc[0]


def test_collect_keeps_results_only_and_the_latest_rerun(data):
    runs = data.runs
    assert not (runs.f1_macro == 0.99).any()                      # group jobs of GMTL are not results
    assert len(runs[(runs.arch == "stl")]) == 6                   # the unfinished STL parent is not a result
    assert len(runs[(runs.arch == "mtl") & (runs.model == "bert")]) == 6   # the rerun replaced fold 0, seed 42
    assert set(runs.study) == {"folds=3, val_size=0.15, threshold=global", "folds=2, val_size=0.15, threshold=global"}
    assert set(data.labels.label) == set(LABELS)                   # a label name with "/" survives the metric key
    assert data.warnings == []


def test_main_table_means_stds_and_best_setting(main_study):
    table = main_table(main_study, "openi", Reference.load())
    mtl, gmtl = row(table.raw, "mtl", "bert"), row(table.raw, "gmtl", "bert")
    assert mtl.f1_macro_mean == pytest.approx(MTL.mean()) and mtl.f1_macro_std == pytest.approx(MTL.std(ddof=1))
    assert mtl.n == 6
    assert gmtl.setting == "description-k3"                       # best on validation, not on test
    assert gmtl.f1_macro_mean == pytest.approx((MTL + GMTL_DESC_DIFF).mean())
    assert gmtl.f1_micro_mean == pytest.approx((MTL + GMTL_DESC_DIFF).mean() + 0.1)
    on_test = main_table(main_study, "openi", Reference.load(), criterion="f1_macro")
    assert row(on_test.raw, "gmtl", "bert").setting == "label-k3"
    assert list(table.frame.Architecture[:2]) == ["baseline-tfidf-logreg", "stl"]   # baselines first
    shown = table.frame[table.frame.Architecture == "gmtl"].iloc[0]
    assert shown["Setting"] == "description, k=3"
    assert shown["F1-macro"] == f"{(MTL + GMTL_DESC_DIFF).mean():.3f} ± {(MTL + GMTL_DESC_DIFF).std(ddof=1):.3f}"
    # bold: the best mean per column (biobert's GMTL, 0.76)
    best = table.raw.f1_macro_mean.idxmax()
    assert table.bold.loc[best, "F1-macro"] and table.bold["F1-macro"].sum() == 1


def test_baseline_warning(main_study):
    table = main_table(main_study, "openi", Reference.load())
    flagged = set(zip(table.raw.arch[table.raw.below_baseline], table.raw.model[table.raw.below_baseline]))
    # below the baseline (0.74): MTL (0.725), GMHL (0.60), STL (0.70), biobert MTL (0.705); not GMTL (0.747, 0.76)
    assert flagged == {("mtl", "bert"), ("gmhl", "bert"), ("stl", "bert"), ("mtl", "biobert")}
    assert table.frame.loc[table.raw.below_baseline, "F1-macro"].str.endswith("⚠").all()
    assert not table.frame.loc[~table.raw.below_baseline, "F1-macro"].str.contains("⚠").any()
    note = [n for n in table.notes if n.startswith("⚠")]
    assert note and f"F1-macro {BASELINE:.3f}" in note[0] and "4 encoder result(s)" in note[0]


def test_grid_table_marks_the_chosen_setting(main_study):
    table = grid_table(main_study, "openi", Reference.load())
    bert = table.frame[(table.frame.Architecture == "gmtl") & (table.frame.Model == "bert")]
    assert list(bert.Feature) == ["description", "label"]
    assert list(table.bold.loc[bert.index, "k=3"]) == [True, False]
    label = bert[bert.Feature == "label"].iloc[0]["k=3"]
    assert label.startswith(f"{(MTL + GMTL_LABEL_DIFF).mean():.3f} ± ")
    assert "k=4" in table.frame.columns and table.frame.loc[bert.index, "k=4"].eq("—").all()


def test_wilcoxon_equals_scipy_and_flags_small_n(main_study):
    table = wilcoxon_table(main_study, "openi", Reference.load())
    bert = table.raw[(table.raw.model == "bert") & (table.raw.metric == "f1_macro")].iloc[0]
    expected = stats.wilcoxon(MTL + GMTL_DESC_DIFF, MTL)
    assert bert.n == 6 and bert.pvalue == pytest.approx(expected.pvalue) and bert.statistic == expected.statistic
    assert bert.gmtl_setting == "description-k3" and bert.mean_diff == pytest.approx(GMTL_DESC_DIFF.mean())
    micro = table.raw[(table.raw.model == "bert") & (table.raw.metric == "f1_micro")].iloc[0]
    assert micro.pvalue == pytest.approx(stats.wilcoxon(MTL + GMTL_DESC_DIFF + 0.1, MTL + 0.1).pvalue)
    small = table.raw[table.raw.model == "biobert"].iloc[0]
    assert small.n == 2 and "n=2 non-zero" in small.note and small.min_p == pytest.approx(0.5)   # 2/2**2
    assert not small.can_reach and table.frame.Note[small.name].startswith("⚠")


def test_per_label_table_bolds_the_higher_and_shows_counts(main_study, data):
    counts = pd.DataFrame({"count": [11.0, 4.0], "share": [0.22, 0.08]}, index=LABELS)
    table = label_table(main_study, data.labels, counts, "openi", Reference.load(), label_order=LABELS)
    frame = table.frame.set_index("Label")
    assert frame.loc["Cardiomegaly", "GMTL bert"] == "0.700 ± 0.000"
    assert frame.loc["Cardiomegaly", "MTL bert"] == "0.800 ± 0.000"
    bold = table.bold.set_index(table.frame.Label)
    assert bold.loc["Cardiomegaly", "MTL bert"] and not bold.loc["Cardiomegaly", "GMTL bert"]
    assert bold.loc["lung/hypoinflation", "GMTL bert"] and not bold.loc["lung/hypoinflation", "MTL bert"]
    assert frame.loc["Cardiomegaly", "Test count"] == "11" and frame.loc["Cardiomegaly", "Share"] == "22.0%"


def test_time_table_ratio(main_study):
    table = time_table(main_study, "openi", Reference.load())
    ratio = row(table.raw, "stl/gmtl", "bert")
    assert ratio.wall_mean_s == pytest.approx(100 / 25) and ratio.compute_mean_s == pytest.approx(120 / 30)
    assert row(table.raw, "mtl", "bert").wall_mean_s == pytest.approx(20.0)
    assert "4.00×" in table.frame[table.frame.Architecture == "STL / GMTL"]["Wall-clock (s)"].iloc[0]


def test_reference_columns(main_study, data, reference_csv):
    ref = Reference.load(reference_csv)
    table = main_table(main_study, "openi", ref)
    shown = table.frame[(table.frame.Architecture == "mtl") & (table.frame.Model == "bert")].iloc[0]
    assert shown["F1-macro (ref)"] == "0.700" and shown["Δ F1-macro"] == f"{MTL.mean() - 0.7:+.3f}"
    assert "F1-micro (ref)" not in table.frame.columns                    # no published F1-micro given
    assert table.frame[table.frame.Architecture == "stl"]["F1-macro (ref)"].iloc[0] == "—"
    grid = grid_table(main_study, "openi", ref)
    cell = grid.frame[(grid.frame.Model == "bert") & (grid.frame.Feature == "description")]["k=3"].iloc[0]
    assert cell.endswith(f"[ref 0.750, Δ {(MTL + GMTL_DESC_DIFF).mean() - 0.75:+.3f}]")
    labels = label_table(main_study, data.labels, None, "openi", ref, label_order=LABELS)
    assert labels.frame.set_index("Label").loc["Cardiomegaly", "MTL bert"].endswith("[ref 0.900, Δ -0.100]")
    packaged = main_table(main_study, "openi", Reference.load()).frame.set_index(["Architecture", "Model"])
    assert packaged.loc[("mtl", "bert"), "F1-macro (ref)"] == "0.857 ± 0.017"      # thesis Table 4.3
    assert packaged.loc[("mtl", "bert"), "Δ F1-macro"] == f"{MTL.mean() - 0.8572:+.3f}"
    assert "Ref. model" not in packaged.columns                                   # bert is a thesis model
    assert packaged.loc[("gmtl", "bert"), "Ref. setting"] == "description, k=5"   # the thesis's choice
    assert packaged.loc[("gmtl", "bert"), "Setting"] == "description, k=3"        # ours (validation)
    tests = wilcoxon_table(main_study, "openi", Reference.load()).frame.set_index(["Model", "Metric"])
    assert tests.loc[("bert", "F1-macro"), "p (ref)"] == "0.0020"                  # thesis Table 4.4
    assert tests.loc[("bert", "F1-macro"), "Δ (ref)"] == f"{0.9145 - 0.8572:+.3f}"  # its GMTL − MTL, Table 4.3
    times = time_table(main_study, "openi", Reference.load()).frame.set_index(["Architecture", "Model"])
    assert times.loc[("stl", "bert"), "All folds (s)"] == "300.0"                 # 3 folds x 100 s, per seed
    assert times.loc[("stl", "bert"), "All folds (ref, s)"] == "12600.0"           # thesis Table 4.9
    assert times.loc[("stl", "bert"), "ours / ref"] == f"{300 / 12600:.2f}×"


def test_report_files(store, reference_csv, tmp_path):
    out = tmp_path / "report"
    page = build_report(compose([f"tracking_uri={store}", f"out={out}", f"reference={reference_csv}"],
                                config_name="report"))
    text = page.read_text()
    for name in ("table1_main", "table2_clustering", "table3_wilcoxon", "table4_per_label", "table5_wallclock"):
        for ext in ("md", "tex", "csv"):
            assert (out / "openi" / f"{name}.{ext}").stat().st_size > 0, (name, ext)
    assert "## openi-study2" in text and (out / "openi-study2" / "table1_main.csv").exists()   # the 2-fold study
    assert "⚠ 4 encoder result(s) below the best classical baseline" in text
    assert "test source A" in text and "Δ = ours − published" in text
    assert "chose each decision threshold on the test set" in text
    latex = (out / "openi" / "table1_main.tex").read_text()
    assert r"\textbf{" in latex and r"$\pm$" in latex and r"baseline-tfidf-logreg" in latex
    csv = pd.read_csv(out / "openi" / "table1_main.csv")
    assert csv.loc[csv.arch == "mtl", "f1_macro_mean"].iloc[0] == pytest.approx(MTL.mean(), abs=1e-5)
    assert set(csv.arch) == {"baseline-tfidf-logreg", "stl", "mtl", "gmhl", "gmtl"}
    counts = pd.read_csv(out / "openi" / "table4_per_label.csv").set_index("label")
    assert counts.loc["Cardiomegaly", "test_count"] == pytest.approx(11.0)       # mean of 10, 11, 12 per fold
    assert counts.loc["Cardiomegaly", "test_share"] == pytest.approx(np.mean([10, 11, 12]) / 50)
    for png in ("openi_elbow.png", "openi_per_label_bert.png", "openi_wallclock.png"):
        assert (out / "plots" / png).stat().st_size > 1000
        assert f"plots/{png}" in text


def test_make_tables_prints_published_numbers_and_differences(store, tmp_path, capsys):
    from mtlv.report.__main__ import main

    assert main([f"tracking_uri={store}", f"out={tmp_path}", "plots=false"]) == 0
    out = capsys.readouterr().out
    assert "### Table 1 (openi): architectures × models" in out
    assert "F1-macro (ref)" in out and "Δ F1-macro" in out and "0.857 ± 0.017" in out      # MTL-BERT, Table 4.3
    assert f"{MTL.mean() - 0.8572:+.3f}" in out and "chose each decision threshold on the test set" in out
    assert "| tiny | " in out and "Ref. model" in out           # the 2-fold tiny study: compared with BERT's rows


def test_setting_labels_read_the_same_for_a_fixed_and_an_automatic_k():
    from mtlv.report.study_tables import setting_label

    assert [setting_label(s) for s in ("description-k4", "cooccurrence-kauto", "given", "", "my-kind-of-grouping")] == \
        ["description, k=4", "cooccurrence, k=auto", "given", "", "my-kind-of-grouping"]
