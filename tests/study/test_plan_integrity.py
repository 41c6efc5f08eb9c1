"""What a study's plan refuses, drops and says, before anything trains (dry runs, tiny model)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import CLINIC_WORDS, CSV_OPTIONS, ROOT, clinic_csv

from mtlv.errors import ConfigError
from mtlv.study.command import run_study
from mtlv.study.plan import PlanRefusal, combos, split_sweep
from mtlv.study.spec import Sweep

def study_args(tmp_path: Path, yaml: str, name: str, data: Path, *more: str) -> list[str]:
    conf = tmp_path / "conf" / "study"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / f"{name}.yaml").write_text(yaml, encoding="utf-8")
    return [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", f"study={name}", *CSV_OPTIONS, f"dataset.path={data}",
            "model=tiny", "study.dry_run=true", "study.probe=false", *more]


def docs_study() -> str:
    """The "Your own study" YAML of docs/study.md, as a user copies it."""
    text = (ROOT / "docs" / "study.md").read_text(encoding="utf-8")
    return re.search(r"```yaml\n# my_studies/study/labels.yaml\n(.*?)```", text, re.S).group(1)


def saved_plan(out: Path) -> dict:
    return json.loads(next((out / "studies").glob("*/plan.json")).read_text())


def test_the_docs_own_study_plans_its_encoder_grids(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path / "out"))
    data = clinic_csv(tmp_path / "my.csv", list(CLINIC_WORDS))
    # fewer folds and seeds than the docs' (5 x 2), and not the learned groupings, keep the test short
    args = study_args(tmp_path, docs_study(), "labels", data, "study.folds=2", "study.seeds=[1]",
                      "study.run_grids=[anchors,mine]")
    assert run_study(args) == 0
    plan = saved_plan(tmp_path / "out")
    archs = {j["arch"] for j in plan["jobs"]}
    assert {"mtl", "stl", "gmhl", "gmtl"} <= archs, (archs, plan["notes"])
    assert {s["name"] for s in plan["sweeps"]} == {"csv-baselines", "csv-anchors", "csv-mine"}
    assert not plan["dropped"]


def test_a_study_that_can_train_no_encoder_is_an_error(tmp_path, monkeypatch, capsys):
    """The docs' study as it was (256 tokens with an encoder that takes 128): every encoder grid is dropped."""
    from mtlv.study.__main__ import main

    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path / "out"))
    data = clinic_csv(tmp_path / "my.csv", list(CLINIC_WORDS))
    yaml = re.sub(r"model\.max_length=\d+", "model.max_length=256", docs_study())
    with pytest.raises(SystemExit) as stop:
        main(study_args(tmp_path, yaml, "labels", data, "study.folds=2", "study.seeds=[1]",
                        "study.run_grids=[anchors,mine]"))
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no encoder grid of this study can run here"), err
    assert "csv-anchors, csv-mine" in err[0] and "max_length" in err[0]


GRID = """\
defaults:
  - _study
  - _self_
name: two
budget: [trainer.max_epochs=1]
grids:
  heads: {arch: [mtl, gmhl], clustering: cooccurrence, clustering.k: [2, 3]}
"""


def test_cells_the_plan_drops_are_never_launched(tmp_path, monkeypatch, capsys):
    """Two labels (issue 28): GMHL cannot make 3 groups, while MTL ignores k and runs. The plan drops the GMHL
    k=3 cells and the sweeps never launch them; a rerun says the same."""
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path / "out"))
    data = clinic_csv(tmp_path / "two.csv", ["Fever", "Cough"])
    args = study_args(tmp_path, GRID, "two", data)
    assert run_study(args) == 0
    first = capsys.readouterr().out
    plan = saved_plan(tmp_path / "out")
    dropped = plan["dropped"]
    assert dropped and all("arch=gmhl" in d["cell"] and "clustering.k=3" in d["cell"] for d in dropped), dropped
    launched = [c for s in plan["sweeps"] for c in combos(Sweep("csv", "x", "mtlv.train", tuple(s["command"][3:])))]
    assert launched and not [c for c in launched if "arch=gmhl" in c and "clustering.k=3" in c], launched
    assert {j["arch"] for j in plan["jobs"]} == {"mtl", "gmhl"}
    assert "dropped, never launched" in first and "cannot run" not in first
    assert run_study(args) == 0  # a rerun plans the same, and says so again
    assert saved_plan(tmp_path / "out")["dropped"] == dropped and "dropped, never launched" in capsys.readouterr().out


def test_split_sweep_runs_exactly_the_allowed_cells():
    sweep = Sweep("d", "g", "mtlv.train", ("dataset=csv", "arch=mtl,gmhl,gmtl", "clustering.k=2,3,auto", "seed=1,2"))
    every = combos(sweep)
    allowed = [c for c in every if not ("arch=mtl" not in c and "clustering.k=3" in c)
               and not (c[1] == "arch=gmtl" and c[3] == "seed=2")]
    parts = split_sweep(sweep, allowed)
    got = sorted(tuple(c) for p in parts for c in combos(p))
    assert got == sorted(tuple(c) for c in allowed) and len(got) == len(set(got))
    assert len(parts) <= 4 and parts[0].grid == "g.1"
    assert split_sweep(sweep, every) == [sweep]


def test_an_option_wrong_for_the_groups_found_stops_the_plan(tmp_path, monkeypatch, capsys, notes_csv):
    """head_lrs needs one learning rate per head; the plan knows each cell's heads from its grouping."""
    from mtlv.study.__main__ import main

    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path / "out"))
    grid = GRID.replace("clustering.k: [2, 3]", "clustering.k: [2]")
    with pytest.raises(SystemExit) as stop:
        main(study_args(tmp_path, grid, "two", notes_csv, "model.module.head_lrs=[0.001]"))
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "head_lrs needs one learning rate per head (2 heads)" in err[0], err
    assert "gmhl" in err[0]
    assert not list((tmp_path / "out").glob("studies/*/plan.json"))  # refused before the plan is saved
    with pytest.raises(PlanRefusal):
        run_study(study_args(tmp_path, grid, "two", notes_csv, "model.module.head_lrs=[0.001]"))
    assert issubclass(PlanRefusal, ConfigError)


def test_a_cell_set_from_an_earlier_one_is_the_cell_hydra_composes(notes_csv):
    """Planning composes a sweep's first cell of each kind and sets the plain values (seed, fold, k, groups) of
    the others, as Hydra would: every cell equals its full composition."""
    from omegaconf import OmegaConf

    from mtlv.study.plan import compose_cell

    sweep = Sweep("csv", "g", "mtlv.train", (*CSV_OPTIONS, f"dataset.path={notes_csv}", "model=tiny",
                                             "arch=mtl,gmtl", "clustering=cooccurrence,given", "clustering.k=2,3",
                                             "clustering.groups=[[cough,fever],[rash,nausea]]", "split.folds=2",
                                             "split.fold=0,1", "seed=1,2", "trainer.max_epochs=1"))
    cache: dict = {}
    cells = combos(sweep)
    fast = [compose_cell(sweep, c, cache) for c in cells]
    assert len(cache) - 1 < len(cells) / 4  # most cells were set, not composed
    for combo, got in list(zip(cells, fast))[::3]:
        want = compose_cell(sweep, combo)

        def seen(cfg):  # what jobs read: the config, the launcher, the groups chosen (not Hydra's run folders)
            return ({k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
                     for k in cfg if k != "hydra"},
                    OmegaConf.to_container(cfg.hydra.launcher), OmegaConf.to_container(cfg.hydra.runtime.choices),
                    list(cfg.hydra.overrides.task))

        assert seen(got) == seen(want), combo


def test_the_estimate_counts_each_sweeps_start_up_and_each_jobs_fixed_cost(tmp_path, monkeypatch):
    """A job's result.json times its training only; a study also pays each sweep's start-up and each job's files
    and MLflow run (issue 28: a small study's estimate was 10x low)."""
    from omegaconf import OmegaConf

    from mtlv.study import command, estimate
    from mtlv.study.plan import Job, Plan
    from mtlv.study.progress import duration

    work = {"train": 100, "val": 20, "test": 20, "epochs": 1, "test_curve": False}
    jobs = [Job(i % 2, tmp_path / f"job{i}", tmp_path / f"cell{i}", f"mtl-{i}", "mtl", f"m{i}", False, work=work,
                speed_key="s") for i in range(4)]
    plan = Plan([Sweep("csv", "a", "mtlv.train", ()), Sweep("csv", "b", "mtlv.train", ())], jobs,
                speed_configs={"s": OmegaConf.create({"model": {"name": "tiny"}, "dataset": {"name": "csv"}})})
    speed = estimate.Speed(2.0, 0.05, "test")
    monkeypatch.setattr(estimate, "from_history", lambda runs_dir, key: speed)
    times, _ = command.estimates(plan, str(tmp_path), False, print)
    each = speed.seconds(work) + estimate.JOB_FIXED_S
    assert estimate.JOB_FIXED_S > 0 and times == {j.folder: pytest.approx(each) for j in jobs}
    cfg = OmegaConf.create({"study": {"name": "t", "about": "", "archs": None, "grids": {}}})
    text = command.plan_text(cfg, plan, times, [], 2, tmp_path)
    wall = 4 * each / 2 + 2 * estimate.SWEEP_START_S  # two jobs at a time, two sweeps one after the other
    assert estimate.SWEEP_START_S > 0 and f"estimate: {duration(4 * each)} of job time; about {duration(wall)} " \
        "with 2 jobs at a time" in text, text
    assert f"~{estimate.SWEEP_START_S:.0f} s per sweep started (2 here" in text
