"""A study config and the command's overrides -> its sweeps: the command's own values replace the study's,
options go only to the sweeps that use them, and the study's filters select grids, architectures, datasets."""
from __future__ import annotations

import pytest

from mtlv.config import compose
from mtlv.errors import ConfigError
from mtlv.study.spec import grid_overrides, left_out, merge, sweeps_for, value_text


def study(name: str, *extra: str):
    return compose([f"study={name}", *extra], config_name="study").study


def test_quick_study_sweeps_with_the_commands_own_values():
    user = ["dataset=csv", "dataset.path=/data/x.csv", "model=tiny", "trainer.max_epochs=2", "clustering.k=4",
            "baseline.min_df=1", "hydra/launcher=parallel"]
    sweeps = sweeps_for(study("quick"), "csv", None, None, user)
    assert [(s.grid, s.module) for s in sweeps] == [("baselines", "mtlv.baseline"), ("one_model", "mtlv.train"),
                                                    ("gmtl", "mtlv.train")]
    base, gmhl, gmtl = (list(s.overrides) for s in sweeps)
    anchors = gmhl
    # the command's trainer.max_epochs replaces the study's budget value, everywhere
    assert "trainer.max_epochs=20" not in anchors + gmhl and "trainer.max_epochs=2" in anchors
    assert "model.max_length=128" in anchors and "seed=42" in gmtl
    # the rest of quick's recipe (docs/study.md, "A recipe for quick") reaches every training sweep
    for recipe in ("trainer.max_steps=500", "model.module.pos_weight=balanced", "data.batch_size=4"):
        assert recipe in gmhl and recipe in gmtl
    # clustering options only where the grid clusters; baseline options only for the baselines
    assert "clustering.k=4" in gmhl and "clustering.k=3,auto" not in gmhl and "clustering.k=4" in gmtl
    assert not [o for o in base if o.startswith("clustering")]
    assert "baseline.min_df=1" in base and "baseline.min_df=1" not in gmhl
    assert "hydra/launcher=parallel" in base and "hydra/launcher=parallel" in gmtl
    # quick leaves STL (a model per label) out of its anchors: the plan says so; study.archs=null adds it
    assert "arch=mtl,gmhl" in gmhl and "arch=gmtl" in gmtl
    assert left_out(study("quick")) == ["stl"] and left_out(study("quick", "study.archs=null")) == []
    everything = sweeps_for(study("quick", "study.archs=null"), "csv", None, None, user)
    assert everything[-1].grid == "stl" and "arch=stl" in everything[-1].overrides
    assert not [o for o in everything[-1].overrides if o.startswith("clustering")]
    assert "clustering=kmedoids_label,cooccurrence" in gmtl


def test_filters_and_folds():
    thesis = study("thesis", "study.archs=[gmtl,baseline]", "study.run_grids=null")
    sweeps = sweeps_for(thesis, "openi", "openi_paper", 4, [])
    assert [s.grid for s in sweeps] == ["baselines", "reference", "beyond_groupings"]  # weightings: gmhl only
    reference = list(sweeps[1].overrides)
    assert reference[:2] == ["experiment=openi_paper", "dataset=openi"]
    assert "split.fold=0,1,2,3" in reference and "seed=42,43,44" in reference
    assert "model=bert,biobert,bluebert" in reference and "arch=gmtl" in reference
    # a model given on the command line replaces the study's three
    mine = sweeps_for(thesis, "openi", "openi_paper", 4, ["model=minilm"])[1].overrides
    assert "model=minilm" in mine and not [o for o in mine if o.startswith("model=bert")]


def test_value_text_and_grids():
    assert value_text("Lung Opacity") == "'Lung Opacity'" and value_text(3) == "3" and value_text(None) == "null"
    assert grid_overrides({"arch": ["gmtl"], "clustering": "given", "clustering.groups": [[0, 2], [1, 3]]}) == [
        "arch=gmtl", "clustering=given", "clustering.groups=[[0,2],[1,3]]"]
    assert merge(["a=1", "b=2,3"], ["b=4"]) == ["a=1", "b=4"]
    with pytest.raises(ConfigError, match="empty list"):
        grid_overrides({"clustering.k": []})


@pytest.mark.parametrize("text", ["/tmp/études,a=b/out", "it's", "back\\slash", "end\\", "x\\'y", "${not_a_key}",
                                  "Lung Opacity", "Ünï", 'q"d'])
def test_value_text_reads_back_as_itself(text):
    """A study builds overrides from folder names (`out=<study folder>/report`): Hydra reads each back as the same
    text, whatever the folder is called (non-ASCII, `,`, `=`, quotes, backslashes, `${`)."""
    from mtlv.config import compose

    assert compose([f"out={value_text(text)}"], config_name="report").out == text
