"""`make reproduce-tables GRID=beyond`: the learned groupings and the GMHL weightings, after the scale's
grid, as Hydra multiruns whose every combination composes to a valid config."""
from __future__ import annotations

import itertools

import pytest
from hydra.utils import instantiate

from mtlv.config import compose




def test_beyond_grid_composes(script, monkeypatch, tmp_path):
    monkeypatch.setenv("MTLV_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path / "out"))
    cmds = script.beyond_commands("smoke", None, "42", ["trainer.max_epochs=2"])
    archs = [next(a for a in c if a.startswith("arch=")) for c in cmds]
    assert archs == ["arch=gmhl", "arch=gmtl", "arch=gmhl"]
    assert "clustering.k=3,4,5,auto" in cmds[1] and "clustering.algorithm=kmedoids,agglomerative" in cmds[1]
    assert "weighting=sum,mean,uncertainty,pcgrad,labelmean" in cmds[2]
    for cmd in cmds:
        sweeps = [o.split("=", 1) for o in cmd[4:] if "," in o and not o.startswith("hydra.")]
        fixed = [o for o in cmd[4:] if "," not in o and not o.startswith("hydra.")]
        for values in itertools.product(*[v.split(",") for _, v in sweeps]):
            cfg = compose(fixed + [f"{k}={v}" for (k, _), v in zip(sweeps, values)])
            assert cfg.trainer.max_epochs == 2 and cfg.dataset.name == "demo"
            instantiate(cfg.clustering).check(8)


def test_families_select_the_sweeps(script, monkeypatch, tmp_path, capsys):
    """`--families` splits one study between machines (the neural sweeps on a GPU box, the CPU
    baselines elsewhere): only the named families' sweeps run, in the usual order."""
    monkeypatch.setenv("MTLV_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("MTLV_OUTPUT_DIR", str(tmp_path / "out"))
    assert script.main(["--scale", "smoke-ci", "--grid", "beyond", "--families", "stl,gmtl", "--dry-run"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("-m ")]
    kinds = [next((a for a in line.split() if a.startswith("arch=")), line.split()[1]) for line in lines]
    # under --grid beyond the reference GMTL sweep is not run on its own: the beyond one holds its cells
    assert kinds == ["arch=stl", "arch=gmtl", "mtlv.report"]
    with pytest.raises(SystemExit) as exit_:
        script.main(["--scale", "smoke-ci", "--families", "mtl,cnn", "--dry-run"])
    assert exit_.value.code == 2 and "--families: unknown cnn" in capsys.readouterr().err


@pytest.mark.parametrize("scale", ["smoke", "minilm", "paper"])
def test_beyond_sweeps_hold_every_reference_cell(script, scale):
    """What lets --grid beyond skip the reference GMHL/GMTL sweeps: their clustering values are a subset."""
    values = dict(o.split("=", 1) for o in script.BEYOND["clustering"])
    reference = dict(o.split("=", 1) for o in script.CLUSTERING + [f"clustering.k={script.SCALES[scale]['ks']}"])
    for key, wanted in reference.items():
        assert set(wanted.split(",")) <= set(values[key].split(",")), key
    assert "kmedoids" in values["clustering.algorithm"].split(",")  # the reference's (default) algorithm
