"""From a study's recommendation to a model, and replication built in (`study.confirm`), on a tiny study of a
CSV MTLV has never seen: the commands that end recommendation.md run as printed and predict; a rerun with
study.confirm=1 trains the recommendation's settings on a fresh seed, counted in a plan of its own, and says
whether the recommendation held, leaving the study's own recommendation as it was."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from helpers import CSV_OPTIONS, ROOT, run_cli, write_notes
from mtlv.study.confirm import confirm_sweeps, fresh_seeds, settings_to_confirm
from mtlv.study.plan import Job, Plan
from mtlv.study.spec import Sweep

LABELS = ["cough", "fever", "nausea", "rash"]
STUDY = """\
defaults:
  - _study
  - _self_
name: tinyconfirm
budget: [trainer.max_epochs=1, trainer.enable_progress_bar=false, callbacks.progress_bar=null,
         callbacks.model_checkpoint=null, eval.save_weights=false]
grids:
  anchors: {arch: [mtl, stl]}
  groups: {arch: [gmhl, gmtl], clustering: [cooccurrence], clustering.k: [2]}
baselines: {baseline.features: [tfidf], baseline.classifier: [logreg]}
"""


def test_fresh_seeds_follow_the_studys_own():
    assert fresh_seeds([42], 2) == [43, 44] and fresh_seeds([1, 7, 3], 1) == [8]


def test_each_setting_to_confirm_is_one_sweep_of_its_cell_on_the_fresh_seeds(tmp_path):
    """The recommended GMTL, the cheapest (MTL, which is also the MTL anchor: once), STL and the baseline; each
    sweep is its cell's own overrides with the fresh seeds and the study's folds."""
    base = ("dataset=csv", "model=tiny", "trainer.max_epochs=1")
    cells = {name: tmp_path / name for name in ("gmtl0", "gmtl1", "mtl", "stl", "base")}
    jobs = [Job(0, cells[f"gmtl{f}"], cells[f"gmtl{f}"], "gmtl", "gmtl", "k", False,
                overrides=(*base, "arch=gmtl", "clustering=cooccurrence", "clustering.k=2", f"split.fold={f}", "seed=42"))
            for f in (0, 1)]
    jobs += [Job(0, cells[a], cells[a], a, a, a, False, overrides=(*base, f"arch={a}", "split.fold=0", "seed=42"))
             for a in ("mtl", "stl")]
    jobs.append(Job(1, cells["base"], cells["base"], "b", "baseline", None, False,
                    overrides=("dataset=csv", "baseline.features=tfidf", "split.fold=0", "seed=42")))
    plan = Plan([Sweep("csv", "grid", "mtlv.train", ()), Sweep("csv", "baselines", "mtlv.baseline", ())], jobs)
    runs = pd.DataFrame([
        *({"dataset": "csv", "arch": "gmtl", "model": "tiny", "setting": "cooccurrence-k2",
           "cell_dir": str(cells[f"gmtl{f}"])} for f in (0, 1)),
        {"dataset": "csv", "arch": "mtl", "model": "tiny", "setting": None, "cell_dir": str(cells["mtl"])},
        {"dataset": "csv", "arch": "stl", "model": "tiny", "setting": None, "cell_dir": str(cells["stl"])},
        {"dataset": "csv", "arch": "baseline-tfidf-logreg", "model": "-", "setting": None,
         "cell_dir": str(cells["base"])}])
    section = {"section": "csv", "dataset": "csv",
               "chosen": {"arch": "gmtl", "model": "tiny", "setting": "cooccurrence-k2", "name": "GMTL tiny (x)"},
               "cheapest": {"arch": "mtl", "model": "tiny", "setting": "", "name": "MTL tiny"},
               "baseline": {"arch": "baseline-tfidf-logreg", "model": "-", "setting": "", "name": "baseline-tfidf-logreg"}}
    roles = [r for r, _ in settings_to_confirm(section, runs)]
    assert roles == ["recommended", "cheapest equivalent", "STL", "best baseline"]
    sweeps = confirm_sweeps(plan, runs, [section], [43, 44])
    assert [s.module for s in sweeps] == ["mtlv.train"] * 3 + ["mtlv.baseline"]
    assert [s.name for s in sweeps] == [f"csv-confirm-{r}" for r in ("recommended", "cheapest", "stl", "baseline")]
    assert sweeps[0].overrides == (*base, "arch=gmtl", "clustering=cooccurrence", "clustering.k=2",
                                   "split.fold=0,1", "seed=43,44")
    assert sweeps[1].overrides == (*base, "arch=mtl", "split.fold=0", "seed=43,44")
    assert sweeps[3].overrides == ("dataset=csv", "baseline.features=tfidf", "split.fold=0", "seed=43,44")


def test_a_bad_confirm_is_one_error_line(tmp_path):
    proc = run_cli("mtlv.study", ["study=quick", "study.confirm=-1", "study.dry_run=true"], tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: study.confirm=-1"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A finished tiny study (9 jobs): its arguments, output folder and report folder."""
    root = tmp_path_factory.mktemp("study")
    (root / "conf" / "study").mkdir(parents=True)
    (root / "conf" / "study" / "tinyconfirm.yaml").write_text(STUDY)
    notes = write_notes(root / "notes.csv")
    args = [f"hydra.searchpath=[file://{root / 'conf'}]", "study=tinyconfirm", *CSV_OPTIONS, f"dataset.path={notes}",
            "model=tiny", "study.probe=false"]
    proc = run_cli("mtlv.study", args, root / "out", timeout=1500)
    folder = Path(re.search(r"^folder: (.+)$", proc.stdout, re.M).group(1))
    return args, root / "out", folder / "report", notes


def commands_of(page: str) -> list[str]:
    block = re.search(r"## From recommendation to model\n.*?```bash\n(.*?)```", page, re.S)
    return block.group(1).strip().splitlines()


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_the_recommendations_commands_run_as_printed_and_predict(study):
    args, out, report, notes = study
    page = (report / "recommendation.md").read_text()
    assert page.rstrip().endswith("one text per line).")  # the commands end the recommendation
    train, predict = commands_of(page)
    [section] = json.loads((report / "recommendation.json").read_text())["sections"]
    [saved] = json.loads((report / "recommendation.json").read_text())["model_commands"]
    assert (saved["train_line"], saved["predict_line"]) == (train, predict)
    chosen = section["chosen"]
    assert f"arch={chosen['arch']}" in train and "seed=42" in train and train.endswith("eval.save_weights=true")
    assert "'dataset.source.label_delimiter=|'" in train  # quoted: a bare | would be a shell pipe
    assert "model_checkpoint=null" not in train and "save_weights=false" not in train
    assert "no weights (`eval.save_weights=false`)" in page
    env = dict(os.environ, MTLV_OUTPUT_DIR=str(out), HF_HUB_OFFLINE="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for line in (train, predict):  # as a user pastes them into a shell
        proc = subprocess.run(["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, line + "\n" + proc.stdout[-3000:] + proc.stderr[-3000:]
    folder = Path(saved["folder"])
    assert folder.name.startswith(f"{chosen['arch']}-tiny") and list(folder.glob("**/export/*"))  # weights
    written = Path(re.search(r"output=(\S+)", predict).group(1))
    frame = pd.read_csv(written)
    assert len(frame) == len(pd.read_csv(notes)) == 120
    assert list(frame.columns) == ["id"] + [f"prob:{n}" for n in LABELS] + ["labels"]
    assert set(";".join(frame["labels"].fillna("")).split(";")) <= set(LABELS) | {""}
    assert frame[[f"prob:{n}" for n in LABELS]].stack().between(0, 1).all()


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_confirm_reruns_the_settings_on_a_fresh_seed_and_says_whether_it_held(study):
    args, out, report, _ = study
    before = (report / "recommendation.md").read_text()
    proc = run_cli("mtlv.study", [*args, "study.confirm=1"], out, timeout=1500)
    log = proc.stdout
    # the same study folder: its jobs are all finished; the confirmation has a plan of its own, counted and timed
    assert re.search(r"9 jobs \(trainings\), 9 distinct models; 9 finished before, 0 to train now", log), log[-3000:]
    assert "confirmation of study tinyconfirm: the recommendation's settings on fresh seeds 43" in log
    data = json.loads((report / "recommendation.json").read_text())
    [section], confirm = data["sections"], data["confirm"]
    assert confirm["seeds"] == [43]
    [result] = confirm["sections"]
    roles = [s["role"] for s in result["settings"]]
    assert roles[0] == "recommended" and "best baseline" in roles and "STL" in roles
    assert len(set(s["name"] for s in result["settings"])) == len(roles)   # each setting once
    planned = re.search(r"confirmation of study.*?total: \d+ cells; (\d+) jobs \(trainings\).*?(\d+) to train now",
                        log, re.S)
    expected = sum({"stl": 4, "gmtl": 2}.get(s["arch"], 1) for s in result["settings"])  # one seed: a job per model
    assert int(planned.group(1)) == int(planned.group(2)) == expected
    assert len(re.findall(r"\] done .*?: test F1-macro", log)) == expected
    # every fresh number is the fresh job's own (its cell's metrics.json), on seed 43
    fresh = pd.read_csv(report / "runs.csv")  # the study's own results only: the fresh ones are not in it
    assert set(fresh.seed) == {42}
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{out}/mlflow.db")
    runs = mlflow.search_runs(search_all_experiments=True)  # a CSV's experiment is its data name
    runs = runs[runs["params.seed"] == "43"]
    for setting in result["settings"]:
        [sample] = setting["fresh"]
        assert sample["seed"] == 43
        mine = runs[(runs["tags.arch"] == setting["arch"]) if not setting["arch"].startswith("baseline")
                    else runs["tags.mlflow.runName"].str.startswith("baseline")]
        assert any(abs(sample["test_f1_macro"] - v) < 1e-9 for v in mine["metrics.test/f1_macro"]), setting["name"]
        if setting["interval"] is not None:
            lo, hi = setting["interval"]
            assert sample["inside"] == (lo <= sample["test_f1_macro"] <= hi)
    means = {s["name"]: s["test_mean"] for s in result["settings"]}
    mine = means[result["settings"][0]["name"]]
    assert result["rank"] == 1 + sum(m > mine for m in means.values())   # ties share a rank
    page = (report / "report.md").read_text()
    assert "## Did it hold? (1 fresh seed: 43)" in page and f"rank {result['rank']} of {len(means)}" in page
    # the study's own recommendation is unchanged; "Did it hold?" comes before the commands that end it
    after = (report / "recommendation.md").read_text()
    assert after.split("\n## Did it hold?")[0] == before.split("\n## From recommendation to model")[0]
    assert after.index("## Did it hold?") < after.index("## From recommendation to model")
    # rerun: the fresh jobs are reused by their content-addressed keys
    again = run_cli("mtlv.study", [*args, "study.confirm=1"], out, timeout=1500).stdout
    assert re.search(rf"confirmation of study.*?{expected} finished before, 0 to train now", again, re.S)
    assert json.loads((report / "recommendation.json").read_text())["confirm"] == confirm
