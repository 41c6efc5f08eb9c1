"""`study=thesis` and its scales (`make reproduce-tables SCALE=...`, scripts/reproduce_tables.py): the sweeps
of the reference grid per dataset, the command's overrides where they apply, every cell a valid config."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from helpers import load_script
from hydra.utils import instantiate

from mtlv.config import compose
from mtlv.study.command import compose_study, dataset_sweeps

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    """scripts/reproduce_tables.py as a module (a script, not part of the package)."""
    return load_script("reproduce_tables")


def sweeps(*args: str):
    cfg, user = compose_study(list(args))
    notes: list[str] = []
    return dataset_sweeps(cfg, user, notes), notes


def cells(sweep, every: tuple[str, ...] = ()) -> list:
    """The cells of a sweep composed as Hydra's basic sweeper expands them: every value of the options in
    `every` (all options when empty), the first value of the others (composing costs ~0.2 s a cell)."""
    fixed = [o for o in sweep.overrides if "," not in o.split("=", 1)[1] or o.split("=", 1)[1].startswith("[")]
    swept = [o.split("=", 1) for o in sweep.overrides if o not in fixed]
    values = [v.split(",") if not every or k in every else v.split(",")[:1] for k, v in swept]
    name = "baseline" if sweep.module == "mtlv.baseline" else "train"
    return [compose(fixed + [f"{k}={v}" for (k, _), v in zip(swept, combo)], config_name=name)
            for combo in itertools.product(*values)]


def size(sweep) -> int:
    """How many cells the sweep has (before folding)."""
    counts = [len(o.split("=", 1)[1].split(",")) for o in sweep.overrides
              if "," in o.split("=", 1)[1] and not o.split("=", 1)[1].startswith("[")]
    return int(__import__("math").prod(counts))


def test_alias_maps_its_options_to_the_study(script):
    args = script.parse(["--scale", "openi-cpu", "--seeds", "42,43", "--datasets", "openi", "--families", "mtl,gmtl",
                         "--grid", "beyond", "--no-report", "--dry-run", "--overrides", "trainer.max_epochs=2"])
    assert script.study_args(args) == ["study=thesis_openi_cpu", "study.seeds=[42,43]", "study.only_datasets=[openi]",
                                       "study.archs=[mtl,gmtl]", "study.run_grids=null", "study.report=false",
                                       "study.dry_run=true", "trainer.max_epochs=2"]
    assert script.study_args(script.parse(["--scale", "paper"])) == ["study=thesis"]
    with pytest.raises(SystemExit) as exit_:
        script.parse(["--families", "mtl,cnn"])
    assert exit_.value.code == 2


@pytest.mark.parametrize("study, model", [("thesis_smoke", "minilm"), ("thesis_smoke_ci", "tiny")])
def test_smoke_without_openi_runs_demo_only(monkeypatch, tmp_path, study, model):
    monkeypatch.setenv("MTLV_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path / "out"))
    found, notes = sweeps(f"study={study}", "trainer.max_epochs=2", "clustering.algorithm=agglomerative",
                          "baseline.classifier=random_forest", "seed=1,2")
    assert [(s.dataset, s.grid, s.module) for s in found] == [("demo", "baselines", "mtlv.baseline"),
                                                               ("demo", "reference", "mtlv.train")]
    assert notes and "openi" in notes[0] and "skipped" in notes[0]
    base, reference = (list(s.overrides) for s in found)
    assert "baseline.classifier=random_forest" in base and "baseline.classifier=logreg" not in base
    assert "clustering.algorithm=agglomerative" in reference and "clustering.algorithm=agglomerative" not in base
    assert "seed=1,2" in reference and "seed=42" not in reference and "split.fold=0,1" in reference
    assert "arch=mtl,gmhl,gmtl,stl" in reference and "clustering=kmedoids_label,kmedoids_desc" in reference
    assert size(found[1]) == 4 * 2 * 2 * 2  # arch x clustering x fold x seed (k=3 only)
    for cfg in cells(found[1], every=("arch", "clustering")):
        assert cfg.dataset.name == "demo" and cfg.trainer.max_epochs == 2 and cfg.model.name == model
        assert cfg.dataset.limit == 200 and cfg.split.folds == 2


def test_beyond_grids_compose(monkeypatch, tmp_path):
    monkeypatch.setenv("MTLV_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path / "out"))
    found, _ = sweeps("study=thesis_smoke_ci", "study.run_grids=null", "study.archs=[gmhl,gmtl]")
    assert [s.grid for s in found] == ["reference", "beyond_groupings", "beyond_weightings"]
    weightings = found[2]
    assert "weighting=sum,mean,uncertainty,pcgrad,labelmean" in weightings.overrides
    for sweep in found[1:]:
        for cfg in cells(sweep, every=("clustering", "clustering.algorithm", "clustering.k", "weighting")):
            assert cfg.arch.name in ("gmhl", "gmtl")
            instantiate(cfg.clustering).check(8)


@pytest.mark.data
def test_paper_and_minilm_grids(monkeypatch, tmp_path, openi_csv):
    monkeypatch.setenv("MTLV_DATA_DIR", str(openi_csv.parents[1]))
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path))
    found, _ = sweeps("study=thesis", "study.only_datasets=[openi]")
    assert [s.grid for s in found] == ["baselines", "reference"]
    reference = found[1]
    assert {"experiment=openi_paper", "split.fold=0,1,2,3", "seed=42,43,44", "clustering.k=3,4,5",
            "model=bert,biobert,bluebert"} <= set(reference.overrides)
    base = found[0]
    assert "baseline.features=tfidf,bow" in base.overrides and "baseline.classifier=logreg,random_forest" in base.overrides
    cfg = cells(reference, every=("model",))[0]
    assert (cfg.split.folds, cfg.trainer.max_epochs, cfg.model.max_length, cfg.data.batch_size) == (4, 10, 128, 16)
    assert cfg.model.module.lr == 2e-5 and cfg.model.module.head_lr is None and cfg.model.module.pooling == "cls"
    minilm, _ = sweeps("study=thesis_minilm", "study.only_datasets=[openi]")
    assert "model=minilm" in minilm[1].overrides and "seed=42,43,44" in minilm[1].overrides
    # OHSUMED's protocol, as the study's ohsumed sweeps compose it
    ohsumed = compose(["experiment=ohsumed_paper", "model=minilm"])
    assert (ohsumed.split.folds, ohsumed.trainer.max_epochs, ohsumed.model.max_length, ohsumed.dataset.fraction) == (
        3, 12, 256, 0.2)


def test_a_bad_override_is_one_error_line(monkeypatch, tmp_path, capsys):
    from mtlv.study.__main__ import main

    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path))
    for argv, needle in ((["foo.bar=1"], "Could not override 'foo.bar'"), (["seed=1,"], "error: "),
                         (["study=nosuch"], "nosuch")):
        with pytest.raises(SystemExit) as exit_:
            main(["study=thesis_smoke_ci", *argv] if not argv[0].startswith("study=") else argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert needle in err, err
