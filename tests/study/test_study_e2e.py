"""A whole study as a user runs it, end to end, on a CSV MTLV has never seen (tiny model): a job fails, the
study still ends with a report and says what failed; the rerun trains only what is missing and recommends.
And the natural "compare everything" grid of `python -m mtlv.train -m` finishes with every distinct job
trained once."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import CSV_OPTIONS, run_cli

FAULT = "+callbacks.fault={_target_:mtlv.run.faults.KillAt,epoch:0,batch:1,action:raise,label:rash}"


def trained_results(runs: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in runs.glob("*/*/*/result.json")]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_quick_study_fails_a_job_then_completes_and_recommends(notes_csv, tmp_path):
    out = tmp_path / "out"
    args = ["study=quick", "study.archs=null", *CSV_OPTIONS, f"dataset.path={notes_csv}", "model=tiny"]
    first = run_cli("mtlv.study", [*args, FAULT], out, timeout=1500, check=False)
    assert first.returncode == 2, first.stdout[-3000:] + first.stderr[-3000:]
    failed = re.findall(r"\] FAILED (.+?): InjectedFault", first.stdout)
    done_1 = re.findall(r"\] done (.+?): test F1-macro", first.stdout)
    # every job with the label rash that trains failed; the others finished
    assert failed and all("rash" in f or "group" not in f for f in failed), failed
    assert not any("rash" in d for d in done_1), done_1
    assert "error:" in first.stderr and "jobs failed" in first.stderr and "Traceback" not in first.stderr
    total = int(re.search(r"total: \d+ cells.*?; (\d+) jobs", first.stdout).group(1))
    assert len(done_1) + len(failed) == total
    assert "\r" not in first.stdout
    folder = Path(re.search(r"^folder: (.+)$", first.stdout, re.M).group(1))
    assert (folder / "report" / "report.md").exists()  # what finished is reported, failures or not

    second = run_cli("mtlv.study", args, out, timeout=1500)
    # the same study: its finished jobs are kept, only the failed ones run
    plan = re.search(r"(\d+) jobs \(trainings\), (\d+) distinct models; (\d+) finished before, (\d+) to train now",
                     second.stdout)
    assert plan and int(plan.group(1)) == total and int(plan.group(3)) == len(done_1)
    done_2 = re.findall(r"\] done (.+?): test F1-macro [0-9.]+ \((?!reused)", second.stdout)
    assert sorted(done_2) and set(done_2) <= set(failed) and not set(done_2) & set(done_1)
    assert len(done_2) == int(plan.group(4))  # what the plan said would train, trained
    # each model trained once over both runs (reused jobs train none)
    results = trained_results(out / "runs")
    trained = [r["model_key"] for r in results if "reused_from" not in r]
    assert len(trained) == len(set(trained)) == int(plan.group(2)) - 1  # the distinct models less the baseline
    report = folder / "report"
    page = (report / "report.md").read_text()
    from mtlv.config import compose
    from mtlv.data.load import data_name

    section = data_name(compose([*CSV_OPTIONS, f"dataset.path={notes_csv}"]))  # the file's name and fingerprint
    # one split is one sample: the ranking is unchecked, never "chosen" (issue 30)
    assert f"## {section}" in page and "Leading on validation, unchecked (one sample):" in page
    assert (report / "report.html").exists() and "Chosen on validation:" not in page
    assert "# MTLV recommendation" in second.stdout and "Leading on validation, unchecked" in second.stdout
    # the recommendation against the study's own results, recomputed here from runs.csv (validation only)
    import pandas as pd

    runs = pd.read_csv(report / "runs.csv")
    encoders = runs[~runs.arch.str.startswith("baseline")].fillna({"setting": ""})
    assert set(encoders.arch) == {"stl", "mtl", "gmhl", "gmtl"}
    best_val = encoders.groupby(["arch", "setting"]).val_f1_macro.mean().max()
    [section] = json.loads((report / "recommendation.json").read_text())["sections"]
    chosen, cheapest = section["chosen"], section["cheapest"]
    assert chosen["val_f1_macro"] == pytest.approx(best_val)
    mine = encoders[(encoders.arch == chosen["arch"]) & (encoders.setting == chosen["setting"])]
    assert chosen["test_f1_macro"] == pytest.approx(mine.f1_macro.mean())  # reported, not chosen on
    # one sample shows no equivalence, and its interval is a bootstrap over the run's saved test predictions
    assert cheapest["name"] == chosen["name"]
    assert chosen["test_interval"]["method"] == "bootstrap over test documents"
    assert chosen["test_ci95"][0] <= chosen["test_f1_macro"] <= chosen["test_ci95"][1]
    assert "no comparison can be significant at 0.05" in page  # one split: one sample


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_natural_grid_trains_each_distinct_job_once(notes_csv, tmp_path):
    args = ["-m", *CSV_OPTIONS, f"dataset.path={notes_csv}", "arch=stl,mtl,gmhl,gmtl",
            "clustering=kmedoids_label,cooccurrence", "clustering.k=2,3", "split.folds=2", "split.fold=0,1",
            "model=tiny", "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "callbacks.progress_bar=null"]
    proc = run_cli("mtlv.train", args, tmp_path, timeout=1500)
    log = proc.stdout + proc.stderr
    assert "error" not in proc.stderr.lower(), proc.stderr[-3000:]
    # mtl and stl: 4 clustering cells per fold are one cell each -> 2 x 2 x 3 folded of 32
    assert "sweep: 12 of 32 cells differ only in options their architecture does not use" in log
    results = trained_results(tmp_path / "runs")
    trained = [r for r in results if "reused_from" not in r]
    keys = [r["model_key"] for r in trained]
    assert len(keys) == len(set(keys)), "a model was trained twice"
    assert len({r["model_key"] for r in results}) == len(keys)  # every reused model was trained by a job here
    assert len([r for r in results if r["run_name"].startswith("stl")]) == 8   # 4 labels x 2 folds, once each
    runs = json.loads(json.dumps([str(p) for p in (tmp_path / "runs" / "csv").glob("mtl-*")]))
    assert len(runs) == 2                                                      # one MTL cell per fold
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    from mtlv.config import compose
    from mtlv.data.load import data_name

    frame = mlflow.search_runs(experiment_names=[data_name(compose([*CSV_OPTIONS, f"dataset.path={notes_csv}"]))])
    assert set(frame.status) == {"FINISHED"}
    mtl = frame[(frame["tags.arch"] == "mtl")]
    assert len(mtl) == 2 and "params.clustering.k" in frame and set(mtl["params.clustering.method"]) == {"none"}


ANCHORS = """\
defaults:
  - _study
  - _self_
name: anchors
# 10 epochs: a job takes a few seconds, long enough for SIGTERM to reach the sweep before it has run them all
budget: [trainer.max_epochs=10, trainer.enable_progress_bar=false, callbacks.progress_bar=null]
grids:
  anchors: {arch: [mtl, stl]}
"""


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_sigterm_stops_the_study_and_the_rerun_finishes_it(notes_csv, tmp_path):
    """SIGTERM to the study (a scheduler's time limit, `kill`) reaches the sweep it runs, which stops its jobs;
    the study says so and exits 143; what finished is kept and the rerun runs only the rest."""
    import os
    import signal
    import subprocess
    import sys
    import threading

    from helpers import ROOT

    (tmp_path / "conf" / "study").mkdir(parents=True)
    (tmp_path / "conf" / "study" / "anchors.yaml").write_text(ANCHORS)
    args = [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "study=anchors", *CSV_OPTIONS,
            f"dataset.path={notes_csv}", "model=tiny", "study.probe=false"]
    env = dict(os.environ, MTLV_OUTPUT_DIR=str(tmp_path / "out"), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "mtlv.study", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    errors: list[str] = []  # stderr drains on its own so that a full pipe never blocks the study
    drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
    drain.start()
    seen = []
    try:
        for line in proc.stdout:  # event-based: stop once the first job is done
            seen.append(line)
            if "] done " in line:
                break
        proc.send_signal(signal.SIGTERM)
        rest = proc.stdout.read()  # through the same buffer: lines already read ahead are not lost
        proc.wait(timeout=600)
        drain.join(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(errors)
    out = "".join(seen) + rest
    assert proc.returncode == 143, out[-2000:] + err[-2000:]
    assert "stopped: SIGTERM ended the study" in err and "Traceback" not in err
    done_1 = re.findall(r"\] done (.+?): test F1-macro", out)
    assert 1 <= len(done_1) < 5, out + err[-3000:]
    assert f"finished: {len(done_1)}/5 jobs done, {5 - len(done_1)} left for the rerun" in out   # stopped, not failed
    assert "failed" not in out
    second = run_cli("mtlv.study", args, tmp_path / "out", timeout=900)
    assert re.search(rf"5 jobs \(trainings\), 5 distinct models; {len(done_1)} finished before", second.stdout), \
        out + "\n----- rerun -----\n" + second.stdout
    done_2 = re.findall(r"\] done (.+?): test F1-macro", second.stdout)
    assert sorted(done_1 + done_2) == sorted(["mtl-tiny"] + [f"stl-tiny group {i} ({n})" for i, n in
                                                             enumerate(["cough", "fever", "nausea", "rash"])])
    # issue 29: the same study run without interruption gives the same recommendation, byte for byte (the
    # files name their store; the two runs here have one each)
    third = run_cli("mtlv.study", args, tmp_path / "uninterrupted", timeout=900)
    files = []
    for proc_out, store in ((second.stdout, tmp_path / "out"), (third.stdout, tmp_path / "uninterrupted")):
        folder = Path(re.search(r"^folder: (.+)$", proc_out, re.M).group(1)) / "report"
        files.append([(folder / name).read_text().replace(str(store), "STORE")
                      for name in ("recommendation.md", "recommendation.json")])
    assert files[0] == files[1]
