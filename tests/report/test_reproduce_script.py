"""The grid of `make reproduce-tables`: one Hydra multirun per (dataset, family), argument lists only,
user overrides replacing the grid's, and every command composing to a valid config."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from mtlv.config import compose
from mtlv.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("MTLV_DATA_DIR", ROOT.parent / "shared" / "data"))



def first_values(cmd: list[str]) -> tuple[str, list[str]]:
    """The config name and the overrides of one job of a multirun command (first value of each sweep)."""
    module, overrides = cmd[2], cmd[4:]
    single = [o.split(",")[0] if "=" in o and not o.startswith("hydra.") else o for o in overrides]
    return ("baseline" if module == "mtlv.baseline" else "train"), [o for o in single if not o.startswith("hydra.")]


def families(cmds):
    out = []
    for cmd in cmds:
        overrides = dict(o.split("=", 1) for o in cmd[4:])
        out.append((overrides.get("dataset"), cmd[2], overrides.get("arch")))
    return out


def test_merge_lets_the_user_replace_a_grid_value(script):
    assert script.merge(["model=bert,biobert", "seed=42"], ["model=minilm", "+x=1"]) == ["seed=42", "model=minilm",
                                                                                           "+x=1"]
    assert script.key_of("++trainer.max_epochs=2") == "trainer.max_epochs"


@pytest.mark.parametrize("scale, experiment, model", [("smoke", "smoke", "minilm"), ("smoke-ci", "smoke_ci", "tiny")])
def test_smoke_without_openi_runs_demo_only(script, monkeypatch, tmp_path, scale, experiment, model):
    monkeypatch.setenv("MTLV_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path / "out"))
    cmds = script.commands(scale, None, "42", ["trainer.max_epochs=2"])
    assert families(cmds) == [("demo", "mtlv.baseline", None), ("demo", "mtlv.train", "mtl"),
                              ("demo", "mtlv.train", "gmhl"), ("demo", "mtlv.train", "gmtl"),
                              ("demo", "mtlv.train", "stl")]
    for cmd in cmds:
        assert cmd[:2] == [sys.executable, "-m"] and cmd[3] == "-m" and all(isinstance(a, str) for a in cmd)
        assert "split.fold=0,1" in cmd and f"experiment={experiment}" in cmd and cmd[-1] == "trainer.max_epochs=2"
        assert any(a.startswith(f"hydra.sweep.dir={tmp_path / 'out'}") for a in cmd)
        name, overrides = first_values(cmd)
        cfg = compose(overrides, config_name=name)            # every command is a valid config
        assert cfg.dataset.name == "demo" and cfg.trainer.max_epochs == 2 and cfg.model.name == model
    gmtl = cmds[3]
    assert "clustering=kmedoids_label,kmedoids_desc" in gmtl and "clustering.k=3" in gmtl


def test_smoke_includes_openi_when_present(script, monkeypatch, tmp_path):
    if not (DATA_DIR / "openi" / "indiana_reports.csv").exists():
        pytest.skip("Open-I CSV not found (set MTLV_DATA_DIR)")
    monkeypatch.setenv("MTLV_DATA_DIR", str(DATA_DIR))
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path))
    cmds = script.commands("smoke", None, "42", [])
    assert {d for d, _, _ in families(cmds)} == {"demo", "openi"} and len(cmds) == 10
    name, overrides = first_values(cmds[-1])
    cfg = compose(overrides, config_name=name)
    assert cfg.dataset.name == "openi" and cfg.dataset.limit == 200 and cfg.arch.name == "stl"


def test_paper_grid(script, monkeypatch, tmp_path):
    monkeypatch.setenv("MTLV_DATA_DIR", str(tmp_path / "nothing"))   # Open-I downloads itself; OHSUMED cannot
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path))
    with pytest.raises(DataError, match="ohsumed: data not found"):
        script.commands("paper", None, "42,43", [])
    cmds = script.commands("paper", ["openi"], "42,43", ["model=bert"])
    gmtl = next(c for c in cmds if "arch=gmtl" in c)
    assert {"split.fold=0,1,2,3", "seed=42,43", "clustering.k=3,4,5", "model=bert"} <= set(gmtl)
    assert sum(a.startswith("model=") for a in gmtl) == 1
    base = cmds[0]
    assert "baseline.features=tfidf,bow" in base and "baseline.classifier=logreg,random_forest" in base
    cfg = compose(first_values(gmtl)[1])
    assert (cfg.split.folds, cfg.trainer.max_epochs, cfg.model.max_length) == (4, 10, 128)
    assert cfg.model.module.lr == 2e-5 and cfg.model.module.head_lr is None and cfg.model.module.pooling == "cls"
    assert cfg.data.batch_size == 16 and cfg.clustering.feature == "name"
    ohsumed = compose(["experiment=ohsumed_paper", "model=biobert"])
    assert (ohsumed.split.folds, ohsumed.trainer.max_epochs, ohsumed.model.max_length) == (3, 12, 256)
    assert ohsumed.dataset.fraction == 0.2 == ohsumed.dataset.source.fraction and ohsumed.model.module.head_lr is None


def test_minilm_scale_is_the_paper_protocol_with_the_packaged_model(script, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MTLV_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path))
    cmds = script.commands("minilm", ["openi"], "42,43,44", [])
    assert [f for _, _, f in families(cmds)] == [None, "mtl", "gmhl", "gmtl", "stl"]
    gmtl = next(c for c in cmds if "arch=gmtl" in c)
    assert {"experiment=openi_paper", "split.fold=0,1,2,3", "seed=42,43,44", "model=minilm",
            "clustering=kmedoids_label,kmedoids_desc", "clustering.k=3,4,5"} <= set(gmtl)
    cfg = compose(first_values(gmtl)[1])
    assert (cfg.split.folds, cfg.trainer.max_epochs, cfg.model.max_length, cfg.data.batch_size) == (4, 10, 128, 16)
    assert cfg.model.name == "minilm" and cfg.data.test_curve is True and cfg.eval.threshold == "global"
    assert script.main(["--scale", "minilm", "--datasets", "openi", "--dry-run"]) == 0
    assert "seed=42,43,44" in capsys.readouterr().out                      # repeated CV by default: 12 pairs
    assert script.main(["--scale", "smoke", "--dry-run"]) == 0
    assert "seed=42 " in capsys.readouterr().out                           # smoke: one repeat


def test_overrides_go_where_they_apply_and_a_bad_one_is_one_error_line(script, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path))
    cmds = script.commands("smoke-ci", ["demo"], "42", ["baseline.classifier=random_forest", "seed=1,2",
                                                        "trainer.max_epochs=2", "clustering.algorithm=agglomerative"])
    [base] = [c for c in cmds if "mtlv.baseline" in c]
    train = {next(a for a in c if a.startswith("arch=")): c for c in cmds if "mtlv.train" in c}
    assert len(train) == 4 and "baseline.classifier=random_forest" in base and "baseline.classifier=logreg" not in base
    assert not any(a.startswith("baseline.") for c in train.values() for a in c)  # mtlv.train has no baseline node
    assert all("seed=1,2" in c and "seed=42" not in c and "trainer.max_epochs=2" in c for c in cmds)
    # clustering options reach the families that cluster; MTL, STL and the baselines have none to set
    assert [arch for arch, c in train.items() if "clustering.algorithm=agglomerative" in c] == ["arch=gmhl", "arch=gmtl"]
    assert "clustering.algorithm=agglomerative" not in base
    for cmd in cmds:  # and every command composes
        name, overrides = first_values(cmd)
        compose(overrides, config_name=name)
    for argv, needles in (
            (["--overrides", "foo.bar=1"], ["error: --overrides foo.bar=1: Could not override 'foo.bar'"]),
            (["--overrides", "seed=1,"], ["error: --overrides seed=1,:"]),
            (["--datasets", "ohsumed", "--scale", "minilm"], ["error: ohsumed: data not found", "MTLV_DATA_DIR"])):
        monkeypatch.setenv("MTLV_DATA_DIR", str(tmp_path / "nothing"))
        with pytest.raises(SystemExit) as exit_:
            script.main(["--scale", "smoke-ci", "--datasets", "demo", "--dry-run", *argv])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert all(n in err for n in needles), err
