"""The sweeper computes a sweep's learned groupings in the joblib launcher's processes before preparing
the cells one by one (mtlv/run/prepare.py `precompute_groupings`): the same groups as one process."""
from __future__ import annotations

from helpers import TINY

from mtlv.config import compose
from mtlv.grouping.partition import TaskGrouping
from mtlv.run.cell import cell_grouping
from mtlv.run.spec import JobSpec
from mtlv.data.load import load_corpus
from mtlv.run.prepare import grouping_workers, precompute_groupings

SETTINGS = [("cooccurrence", "2", "kmedoids"), ("cooccurrence", "3", "agglomerative"),
            ("kmedoids_label", "2", "kmedoids"), ("cooccurrence", "auto", "kmedoids")]


def configs(out):
    """The sweep's cells, each with its spec, as the sweeper resolves them."""
    return [(cfg, JobSpec.of(cfg)) for cfg in _composed(out)]


def _composed(out):
    return [compose([*TINY, "arch=gmhl", "logger=none", f"paths.output_dir={out}", f"clustering={c}",
                     f"clustering.k={k}", f"clustering.algorithm={a}"]) for c, k, a in SETTINGS]


def test_parallel_groupings_equal_serial_ones(tmp_path):
    parallel, serial = configs(tmp_path / "parallel"), configs(tmp_path / "serial")
    assert precompute_groupings(parallel, workers=2) == len(SETTINGS)
    assert precompute_groupings(serial, workers=1) == 0  # one process: left to the sweeper's serial pass
    assert precompute_groupings(parallel, workers=2) == 0  # already saved: nothing to compute
    for (_, p_spec), (s_cfg, s_spec) in zip(parallel, serial):
        expected = cell_grouping(s_spec, load_corpus(s_cfg)).named_groups()  # computed here, in this process
        assert TaskGrouping.load(p_spec.cell.layout.groups_yaml).named_groups() == expected
    assert len({str(spec.cell.folder) for _, spec in parallel}) == len(SETTINGS)


def test_workers_follow_the_launcher():
    assert grouping_workers({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
                             "n_jobs": 6}) == 6
    assert grouping_workers({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"}) == 1
    assert grouping_workers(None) == 1
