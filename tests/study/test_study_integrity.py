"""A study says what it ran and what it did not: cells it cannot run are dropped in the plan (never launched),
knowable errors stop the plan, and whatever the output folder is called the report is written."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import CSV_OPTIONS, clinic_csv, run_cli


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_study_reports_into_any_folder_name(notes_csv, tmp_path):
    """Non-ASCII, `,` and `=` in the output folder: the study quotes the report's `out=` override."""
    out = tmp_path / "études, run=1"
    proc = run_cli("mtlv.study", ["study=quick", "study.archs=[baseline]", *CSV_OPTIONS, f"dataset.path={notes_csv}",
                                  "model=tiny"], out, timeout=500)
    folder = Path(re.search(r"^folder: (.+)$", proc.stdout, re.M).group(1))
    assert str(folder).startswith(str(out)) and (folder / "report" / "report.md").exists()
    assert "Traceback" not in proc.stderr


def test_the_report_lists_what_the_study_lacks_first(tmp_path):
    """A study with failed, never-run and dropped settings: report.md, recommendation.md and report.html say so
    in their first lines, with each setting and its error (issue 28: 4 of 5 failed read as complete)."""
    from omegaconf import OmegaConf

    from mtlv.config import compose
    from mtlv.io import write_json
    from mtlv.report.page import build_report
    from mtlv.study.command import incomplete
    from mtlv.study.plan import Job, Plan
    from mtlv.study.spec import Sweep

    def job(name: str, status: str | None) -> Job:
        folder = tmp_path / "runs" / name
        folder.mkdir(parents=True)
        if status == "done":
            write_json(folder / "result.json", {"key": "k"})
        elif status == "failed":
            write_json(folder / "failed.json", {"error": "ConfigError: model.module.head_lrs needs one learning "
                                                         "rate per head (3 heads), got [0.001]"})
        return Job(0, folder, folder, name, "gmhl", name, False)

    plan = Plan([Sweep("csv", "heads", "mtlv.train", ("arch=mtl,gmhl",))],
                [job("mtl-tiny", "done"), job("gmhl-tiny-cooccurrence-k3", "failed"), job("gmhl-tiny-k2", None)],
                dropped=[{"sweep": "csv-heads", "cell": f"arch=gmhl clustering.k=5 seed={seed}",
                          "error": "clustering.k=5: above the 2 labels"} for seed in (1, 2)])
    items = incomplete(plan)
    assert [(i["setting"], i["status"]) for i in items] == [
        ("gmhl-tiny-cooccurrence-k3", "failed"), ("gmhl-tiny-k2", "missing"),
        ("csv-heads: 2 cells (arch=gmhl clustering.k=5 seed=1; arch=gmhl clustering.k=5 seed=2)", "dropped")]
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.MlflowClient(uri).search_experiments()  # an empty store: what finished does not matter here
    cfg = compose([f"out={tmp_path / 'report'}", f"tracking_uri={uri}", "plots=false"],
                  config_name="report")
    page = build_report(OmegaConf.merge(cfg, {"incomplete": items}))
    head = "\n".join(page.read_text().splitlines()[:12])
    assert "Incomplete study: 3 of its settings have no result (1 failed, 1 did not run, 1 dropped by the plan)" in head
    assert "`gmhl-tiny-cooccurrence-k3`: failed: ConfigError: model.module.head_lrs needs one" in head
    assert ("`csv-heads: 2 cells (arch=gmhl clustering.k=5 seed=1; arch=gmhl clustering.k=5 seed=2)`: dropped by the "
            "plan, never launched: clustering.k=5: above the 2 labels") in head
    rec = "\n".join((page.parent / "recommendation.md").read_text().splitlines()[:10])
    assert "Incomplete study" in rec and "gmhl-tiny-k2" in rec
    html = page.with_suffix(".html").read_text()
    assert "Incomplete study" in html and "gmhl-tiny-cooccurrence-k3" in html


TWO_LABELS = """\
defaults:
  - _study
  - _self_
name: two
budget: [trainer.max_epochs=1, dataset.limit=60]
probe: false
grids:
  heads: {arch: [mtl, gmhl], clustering: cooccurrence, clustering.k: [2, 3]}
"""


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_cells_the_plan_drops_never_run_and_the_report_names_them(tmp_path):
    """Issue 28: on a 2-label CSV GMHL cannot make 3 groups. No job is launched only to fail, the exit code is 0
    on both runs, and the report says which cells were dropped and why, on the rerun too."""
    conf = tmp_path / "conf" / "study"
    conf.mkdir(parents=True)
    (conf / "two.yaml").write_text(TWO_LABELS)
    data = clinic_csv(tmp_path / "two.csv", ["Fever", "Cough"])
    args = [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "study=two", *CSV_OPTIONS, f"dataset.path={data}",
            "model=tiny"]
    for attempt in range(2):
        proc = run_cli("mtlv.study", args, tmp_path / "out", timeout=900)
        assert "FAILED" not in proc.stdout and "jobs failed" not in proc.stderr, proc.stdout[-3000:]
        assert "dropped, never launched" in proc.stdout
        folder = Path(re.search(r"^folder: (.+)$", proc.stdout, re.M).group(1))
        head = "\n".join((folder / "report" / "report.md").read_text().splitlines()[:10])
        assert "Incomplete study: 1 of its settings have no result (1 dropped by the plan)" in head, head
        assert "arch=gmhl clustering.k=3" in head
    assert "0 to train now" in proc.stdout
