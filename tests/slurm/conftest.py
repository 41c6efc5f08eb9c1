"""A throw-away single-node SLURM cluster for the tests in this folder (scripts/slurm_cluster.sh).

Started once per session where munged, slurmctld and slurmd are installed (`apt-get install
slurm-wlm munge`; .ci/run installs them as root), stopped (daemons killed) at the end; the tests
skip where they are not installed. The cluster lives in a fixed folder, so that daemons left over
by an interrupted session are found and killed by the next start."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm_cluster.sh"
TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
CLUSTER_DIR = Path(os.environ.get("MTLV_SLURM_DIR", f"/tmp/mtlv-slurm-{os.getuid()}"))


def _missing() -> list[str]:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [tool for tool in TOOLS if shutil.which(tool, path=path) is None]


@pytest.fixture(scope="session")
def slurm_cluster():
    if missing := _missing():
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing; apt-get install slurm-wlm munge)")
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    proc = subprocess.run(["bash", str(SCRIPT), "start", str(CLUSTER_DIR)], capture_output=True, text=True,
                          timeout=180, env=env)
    if proc.returncode != 0:
        pytest.fail(f"could not start the local SLURM cluster:\n{proc.stdout}\n{proc.stderr}")
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(CLUSTER_DIR / "slurm.conf")
    try:
        yield CLUSTER_DIR
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(CLUSTER_DIR)], capture_output=True, timeout=60, env=env)
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved
