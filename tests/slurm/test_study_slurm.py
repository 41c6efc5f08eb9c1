"""A whole study at cluster scale: `python -m mtlv.study ... hydra/launcher=slurm_cpu` on the local SLURM cluster
(tiny model, MTL + GMTL + a baseline: four jobs, two of them requeued mid-epoch by the scheduler), and its
report is the report of the same study under the joblib launcher (`hydra/launcher=parallel`).

Compared: recommendation.json and recommendation.md (the recommendation) and every table of the report, except
what is measured in seconds (and so differs between any two runs): the compute seconds in the recommendation's
cost sentences, Table 5 (wall-clock) and Table 7's `compute_s` and `pareto` columns (the frontier's cost axis is
compute seconds). Run with `pytest -m slurm`."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import CSV_OPTIONS, ROOT, run_cli, write_notes

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

STUDY = """\
defaults:
  - _study
  - _self_
name: cluster
budget: [trainer.max_epochs=2, trainer.enable_progress_bar=false, callbacks.progress_bar=null, eval.save_weights=false,
         torch_threads=1]
grids:
  anchors: {arch: [mtl]}
  groups: {arch: [gmtl], clustering: [cooccurrence], clustering.k: [2]}
baselines: {baseline.features: [tfidf], baseline.classifier: [logreg]}
"""
SLURM = ["hydra/launcher=slurm_cpu", "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
         "hydra.launcher.mem_gb=2"]
# Every job that trains `nausea` (MTL, one GMTL group) waits after batch 3 of its first epoch until a signal.
PAUSE = "+callbacks.fault={{_target_:mtlv.run.faults.KillAt,epoch:0,batch:3,action:pause,wait_s:1800,label:nausea,marker:'{marker}/'}}"
SECONDS = [(re.compile(r"\d+ s of compute"), "N s of compute"),
           (re.compile(r"[0-9.]+× STL's compute \(\d+ s\)"), "x× STL's compute (N s)")]
MEASURED = {"compute_s", "store"}   # recommendation.json keys measured in seconds, or naming the store


def slurm_id(pid: int) -> str:
    env = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in v)
    if "SLURM_ARRAY_JOB_ID" in env:  # a sweep of several jobs is one job array
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env["SLURM_JOB_ID"]   # a sweep of one job is a plain job


def run_requeueing(args: list[str], out: Path, markers: Path, timeout: float = 2400) -> tuple[int, str, list[str]]:
    """The study, with every job that pauses at the fault requeued by the scheduler (`scontrol requeue`)."""
    env = dict(os.environ, MTLV_OUTPUT_DIR=str(out), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    log = out / "study.log"
    out.mkdir(parents=True, exist_ok=True)
    requeued: list[str] = []
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "mtlv.study", *args], cwd=ROOT, env=env, text=True,
                                stdout=fh, stderr=subprocess.STDOUT)
        deadline, seen = time.time() + timeout, set()
        try:
            while proc.poll() is None:
                if time.time() > deadline:
                    raise AssertionError(f"the study did not finish:\n{log.read_text()[-5000:]}")
                for marker in sorted(markers.glob("*")) if markers.exists() else []:
                    if marker.name not in seen:
                        seen.add(marker.name)
                        job = slurm_id(int(marker.name))
                        subprocess.run(["scontrol", "requeue", job], check=True)
                        requeued.append(job)
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                proc.kill()
    return proc.returncode, log.read_text(), requeued


def job_logs(out: Path) -> dict[str, str]:
    logs: dict[str, str] = {}
    for path in sorted(out.glob("hydra/*/*/.submitit/*/*_log.*")):
        logs[path.parent.name] = logs.get(path.parent.name, "") + path.read_text()
    return logs


def recommendation(report: Path, out: Path) -> tuple[str, dict]:
    """recommendation.md up to the model's commands (they name the launcher), seconds masked; and the JSON
    without measured seconds or the store's name."""
    def masked(text: str) -> str:
        for pattern, mask in SECONDS:
            text = pattern.sub(mask, text)
        return text.replace(str(out), "<out>")

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in MEASURED and k != "model_commands"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return masked(value) if isinstance(value, str) else value

    text = (report / "recommendation.md").read_text().split("\n## From recommendation to model")[0]
    return masked(text), strip(json.loads((report / "recommendation.json").read_text()))


def tables(report: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for path in sorted(report.glob("*/table*.csv")):  # each section's folder is its data name (notes-<fingerprint>)
        if path.name.startswith("table5_") or path.name == "curves.csv":
            continue  # wall-clock seconds
        frame = pd.read_csv(path)
        out[path.name] = frame.drop(columns=[c for c in ("compute_s", "pareto") if c in frame.columns])
    return out


@pytest.mark.timeout(3600)
def test_a_study_on_slurm_with_requeued_jobs_reports_as_under_joblib(slurm_cluster, tmp_path):
    (tmp_path / "conf" / "study").mkdir(parents=True)
    (tmp_path / "conf" / "study" / "cluster.yaml").write_text(STUDY)
    notes = write_notes(tmp_path / "notes.csv")
    args = [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "study=cluster", *CSV_OPTIONS, f"dataset.path={notes}",
            "model=tiny", "study.probe=false"]
    markers = tmp_path / "paused"
    code, log, requeued = run_requeueing([*args, *SLURM, PAUSE.format(marker=markers)], tmp_path / "slurm", markers)
    assert code == 0, log[-5000:]
    assert "finished: 4/4 jobs done" in log and "failed" not in log.lower(), log[-5000:]
    assert len(requeued) == 2, (requeued, log[-3000:])     # MTL and the GMTL group with nausea
    logs = job_logs(tmp_path / "slurm")
    assert len(logs) == 4  # the three trainings and the baseline ran as SLURM jobs
    for job in requeued:  # stopped by the scheduler, requeued, resumed mid-epoch from its checkpoint
        assert "SIGTERM: saved" in logs[job] and "resuming epoch 0 after batch 3" in logs[job], logs[job][-3000:]

    parallel = run_cli("mtlv.study", [*args, "hydra/launcher=parallel", "hydra.launcher.n_jobs=2"],
                       tmp_path / "joblib", timeout=1800)
    assert "finished: 4/4 jobs done" in parallel.stdout
    folder = {name: Path(re.search(r"^folder: (.+)$", text, re.M).group(1)) / "report"
              for name, text in (("slurm", log), ("joblib", parallel.stdout))}
    md_slurm, js_slurm = recommendation(folder["slurm"], tmp_path / "slurm")
    md_joblib, js_joblib = recommendation(folder["joblib"], tmp_path / "joblib")
    assert re.search(r"\*\*(Chosen|Leading|Not resolved) on validation", md_slurm), md_slurm  # a recommendation was made
    assert md_slurm == md_joblib
    assert js_slurm == js_joblib
    got, want = tables(folder["slurm"]), tables(folder["joblib"])
    assert sorted(got) == sorted(want) and len(got) >= 5
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], check_exact=True, obj=name)
