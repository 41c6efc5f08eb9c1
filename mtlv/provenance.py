"""Provenance logged with every run, beside its params: which code and libraries computed it (the MTLV version
and git commit, Python, torch, Lightning, transformers) and on which machine. Left out of a job's key
(mtlv/config.py: identity), so a rerun with another torch version still finds and resumes the same job."""
from __future__ import annotations

import os
from pathlib import Path


def run_environment() -> dict[str, str]:
    """Seed-independent provenance logged with every run: library versions and git commit."""
    import subprocess
    import sys

    import lightning
    import torch
    import transformers

    import mtlv

    env = {"mtlv_version": mtlv.__version__, "python": sys.version.split()[0], "torch": torch.__version__,
           "lightning": lightning.__version__, "transformers": transformers.__version__}
    try:
        root = Path(mtlv.__file__).resolve().parents[1]
        env["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                           text=True, timeout=10, check=False).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        env["git_commit"] = "unknown"
    env["hostname"] = os.uname().nodename
    return env
