"""The plan of a study, before anything trains: its cells and jobs, the models other jobs already train
(reuse), what cannot run on this dataset, and cells that differ only in options their architecture ignores."""
from __future__ import annotations

import json
import textwrap

from helpers import CSV_OPTIONS

from mtlv.config import compose, identity
from mtlv.run.prepare import distinct_cells
from mtlv.study.command import run_study

MINE = """\
defaults:
  - _study
  - _self_
name: mine
about: a hand-checked plan
budget: [trainer.max_epochs=1]
probe: false
grids:
  anchors: {arch: [mtl, stl]}
  given: {arch: [gmtl, gmhl], clustering: given, clustering.groups: [[0], [1, 3], [2]]}
  names: {arch: [gmtl], clustering: [kmedoids_desc, kmedoids_label], clustering.k: [2]}
"""


def test_dry_run_plan(notes_csv, tmp_path, monkeypatch, capsys):
    (tmp_path / "conf" / "study").mkdir(parents=True)
    (tmp_path / "conf" / "study" / "mine.yaml").write_text(MINE)
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path / "out"))
    args = [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "study=mine", *CSV_OPTIONS, f"dataset.path={notes_csv}",
            "model=tiny", "study.dry_run=true"]
    assert run_study(args) == 0
    shown = capsys.readouterr().out
    plan = json.loads(next((tmp_path / "out" / "studies").glob("mine-csv-*/plan.json")).read_text())
    by_sweep = {}
    for job in plan["jobs"]:
        by_sweep.setdefault(job["sweep"], []).append(job)
    # labels in column order: cough 0, fever 1, nausea 2, rash 3
    anchors, given = by_sweep["csv-anchors"], by_sweep["csv-given"]
    assert sorted(j["arch"] for j in anchors) == ["mtl"] + ["stl"] * 4
    assert not any(j["reuses"] or j["finished_before"] for j in anchors)
    gmtl = sorted((j["title"], j["reuses"]) for j in given if j["arch"] == "gmtl")
    # the singleton groups (cough), (nausea) are the STL models of those labels: reused, not trained again
    assert gmtl == [("gmtl-tiny-given group 0 (cough)", True), ("gmtl-tiny-given group 1 (fever, rash)", False),
                    ("gmtl-tiny-given group 2 (nausea)", True)]
    assert [j["reuses"] for j in given if j["arch"] == "gmhl"] == [False]
    # label descriptions: a CSV has none, so that grouping is dropped with the reason, the other one runs
    names = [s for s in plan["sweeps"] if s["name"] == "csv-names"][0]
    assert "clustering=kmedoids_label" in names["command"] and "kmedoids_desc" not in " ".join(names["command"])
    assert any("clustering=kmedoids_desc dropped" in n and "description" in n for n in plan["notes"])
    assert len(by_sweep["csv-names"]) == 2
    assert "csv-given" in shown and "study.dry_run=true: stopped after the plan" in shown
    # power before any training: 5 settings, one sample; 7 tests (4 against STL, 3 against MTL) need 9 samples
    assert ("⚠ Power: 1 paired sample and 7 tests (Holm's correction): the smallest p a two-sided Wilcoxon "
            "signed-rank test can give is 1, 1 after Holm: no comparison can be significant at 0.05, whatever the "
            "results. At least 9 paired samples would make it possible (9 seeds of the split") in shown
    row = [line.split() for line in shown.splitlines() if line.strip().startswith("csv-given")][0]
    assert row[1:] == ["2", "4", "0", "2", "2"]  # cells, jobs, finished, to train, reuse
    assert not (tmp_path / "out" / "mlflow.db").exists()  # a dry run opens no MLflow runs
    # one sample: the plan says, before any training, that the ranking will be unchecked and how to check it
    ranking = [line for line in shown.splitlines() if "Ranking:" in line]
    assert ranking == ["⚠ Ranking: one sample per setting (one split, one seed): the report's ranking will be "
                       "unchecked and it names no setting chosen. To check it: study.seeds=[42,43,44] (every setting "
                       "on 3 splits, about 3x the time) or study.confirm=2 (after the report, the leaders again on 2 "
                       "fresh seeds)."]


def test_the_plan_says_the_measured_spread_and_what_more_seeds_give(notes_csv, tmp_path, monkeypatch, capsys):
    (tmp_path / "conf" / "study").mkdir(parents=True)
    (tmp_path / "conf" / "study" / "mine.yaml").write_text(MINE)
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path / "out"))
    base = [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "study=mine", *CSV_OPTIONS, f"dataset.path={notes_csv}",
            "model=tiny", "study.dry_run=true", "study.seed_spread=0.062"]
    assert run_study(base) == 0
    one = [line for line in capsys.readouterr().out.splitlines() if "Ranking:" in line]
    assert len(one) == 1 and "the seed alone moved a setting's test F1-macro by up to 6.2 points" in one[0]
    assert run_study(base + ["study.seeds=[1,2,3]"]) == 0
    three = [line for line in capsys.readouterr().out.splitlines() if "Ranking:" in line]
    assert three == ["Ranking: 3 samples per setting: the report shows each setting's seed-to-seed spread and names "
                     "a setting chosen only when its lead on validation is larger than that spread."]


def test_cells_differing_only_in_unused_options_are_one_job():
    def cfg(*o):
        return compose(["dataset.limit=50", *o], return_hydra=True)

    cells = [cfg("arch=mtl", "clustering=kmedoids_label", "clustering.k=2"),
             cfg("arch=mtl", "clustering=cooccurrence", "clustering.k=3"),
             cfg("arch=gmtl", "clustering=kmedoids_label", "clustering.k=2"),
             cfg("arch=gmtl", "clustering=kmedoids_label", "clustering.k=3"),
             cfg("arch=stl", "clustering=cooccurrence", "clustering.k=3")]
    combos, kept, folded = distinct_cells(list("abcde"), cells)
    assert combos == ["a", "c", "d", "e"] and folded == 1
    # and the job is the one `arch=mtl` alone names: its key, and so its finished result, is unchanged
    assert identity(cells[0]) == identity(cfg("arch=mtl")) == identity(cells[1])
    assert identity(cells[2]) != identity(cells[3])


def test_the_plan_counts_folded_cells_instead_of_warning_for_each(notes_csv, tmp_path, caplog):
    """An MTL cell of a grid that clusters carries clustering options it does not use: the plan counts it as
    folded; a plain job is still told its option is ignored."""
    import logging

    from mtlv.checks import check_config
    from mtlv.study.plan import prepare

    cfg = compose(["arch=mtl", "clustering=cooccurrence", "clustering.k=3", *CSV_OPTIONS,
                   f"dataset.path={notes_csv}", "model=tiny", f"paths.output_dir={tmp_path}"])
    with caplog.at_level(logging.WARNING, logger="mtlv"):
        _, [job] = prepare(cfg)
    assert job.arch == "mtl" and not job.finished
    assert "is ignored" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="mtlv"):
        check_config(cfg, 4)
    assert "clustering.k=3 is ignored: arch=mtl always uses one group of all labels" in caplog.text


def test_the_plan_points_a_cpu_study_on_the_basic_launcher_to_the_parallel_one(notes_csv, tmp_path, monkeypatch, capsys):
    from mtlv import launch
    from mtlv.study import command

    (tmp_path / "conf" / "study").mkdir(parents=True)
    (tmp_path / "conf" / "study" / "mine.yaml").write_text(MINE)
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setattr(launch, "cores", lambda: 4)
    monkeypatch.setattr(command, "_cuda", lambda: False)
    args = [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "study=mine", *CSV_OPTIONS, f"dataset.path={notes_csv}",
            "model=tiny", "study.dry_run=true"]
    assert run_study(args) == 0
    assert ("note: the basic launcher trains one job at a time; on this machine's 4 CPU cores, hydra/launcher=parallel "
            "hydra.launcher.n_jobs=4 trains 4 at once") in capsys.readouterr().out
    assert run_study([*args, "hydra/launcher=parallel"]) == 0
    assert "basic launcher" not in capsys.readouterr().out
    monkeypatch.setattr(command, "_cuda", lambda: True)  # on a GPU one job at a time is the sensible default
    assert run_study(args) == 0
    assert "basic launcher" not in capsys.readouterr().out


def test_a_bad_study_margin_is_one_error_before_any_work(notes_csv, tmp_path, monkeypatch):
    import pytest

    from mtlv.errors import ConfigError

    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path / "out"))
    with pytest.raises(ConfigError, match=r"study.margin=1.5: give the equivalence margin of validation F1-macro"):
        run_study(["study=quick", *CSV_OPTIONS, f"dataset.path={notes_csv}", "model=tiny", "study.margin=1.5"])
    assert not (tmp_path / "out").exists()
