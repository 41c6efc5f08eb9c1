"""torch_threads unset: parallel jobs on one machine share its cores instead of each using all of them."""
import os

import pytest
from helpers import run_cli

from mtlv.launch import default_threads

JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
SUBMITIT = "hydra_plugins.mtlv_sweeper.mtlv_slurm_launcher.MTLVSlurmLauncher"


@pytest.mark.parametrize("n_jobs, cores, threads", [(2, 16, 8), (4, 16, 4), (3, 16, 5), (8, 2, 1), (1, 6, 6),
                                                    (-1, 16, 1), (-2, 16, 1), (-9, 16, 2), (-16, 16, 16)])
def test_joblib_jobs_share_the_cores(n_jobs, cores, threads):
    assert default_threads({"_target_": JOBLIB, "n_jobs": n_jobs}, {}, cores) == threads


def test_slurm_jobs_use_their_allocation_and_other_launchers_keep_torchs_default():
    assert default_threads({"_target_": SUBMITIT}, {"SLURM_CPUS_PER_TASK": "3"}, 64) == 3
    assert default_threads({"_target_": JOBLIB, "n_jobs": 2}, {"SLURM_CPUS_PER_TASK": "6"}, 64) == 6
    assert default_threads({"_target_": SUBMITIT}, {}, 64) is None
    assert default_threads({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, {}, 8) is None
    assert default_threads(None, {}, 8) is None


@pytest.mark.slow
def test_parallel_launcher_sets_the_share_in_each_job(tmp_path):
    """Two MTL jobs with hydra/launcher=parallel n_jobs=2: each job's torch uses cores // 2 threads."""
    cores = len(os.sched_getaffinity(0))
    proc = run_cli("mtlv.train", ["-m", "seed=1,2", "model=tiny", "dataset.limit=60", "trainer.max_epochs=1",
                                  "logger=none", "eval.save_weights=false", "callbacks.progress_bar=null",
                                  "trainer.enable_progress_bar=false", "hydra/launcher=parallel",
                                  "hydra.launcher.n_jobs=2"], tmp_path)
    logs = "".join(p.read_text() for p in tmp_path.glob("hydra/*/*/*/train.log"))
    assert logs.count(f"torch uses {max(1, cores // 2)} CPU thread(s)") == 2, logs[-2000:]


def test_launcher_facts_have_one_home():
    """mtlv/launch.py: which launchers submit to a cluster, and the cores this process may use."""
    from mtlv.launch import cores, is_cluster, is_submitit

    local = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
    assert [is_cluster({"_target_": t}) for t in (SUBMITIT, local, JOBLIB)] + [is_cluster(None)] == \
        [True, False, False, False]
    assert [is_submitit({"_target_": t}) for t in (SUBMITIT, local, JOBLIB)] == [True, True, False]
    assert cores() == len(os.sched_getaffinity(0))
