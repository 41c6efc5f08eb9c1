"""`arch.inprocess=true`: the group models of an STL/GMTL cell trained one after another inside ONE
job, instead of one launcher job per group.

Each group still gets its own model, Trainer and job folder, through the same `run_job` as a
sweep job, so results are the same as the one-job-per-group sweep (tests/gpu/test_inprocess.py)
and the cell aggregates as usual. What is paid once per cell instead of once per group: a
launcher job (a SLURM allocation and queue wait, a joblib worker), interpreter start, imports,
CUDA context. A finished group is skipped on a rerun; a failed group does not stop the others.
"""
from __future__ import annotations

import logging

from omegaconf import DictConfig

from mtlv.data.load import load_corpus
from mtlv.errors import JobsFailedError
from mtlv.run.cell import cell_grouping
from mtlv.run.spec import JobSpec, LaunchSpec

log = logging.getLogger(__name__)


def wants_inprocess(spec: JobSpec) -> bool:
    return spec.arch["placement"] == "models" and bool(spec.arch.get("inprocess")) and spec.group_index is None


def run_groups(cfg: DictConfig, spec: JobSpec) -> list[dict]:
    """Every group job of the cell of `spec` (resolved, and so checked, once for all of them)."""
    from mtlv.run.job import run_job

    grouping = cell_grouping(spec, load_corpus(cfg))
    results, failed = [], []
    for i in range(grouping.num_groups):
        job = spec.for_group(i, LaunchSpec.resolve(cfg, i))
        log.info("group %d of %d (in-process): %s", i + 1, grouping.num_groups, ", ".join(grouping.named_groups()[i]))
        try:
            results.append(run_job(cfg, job))
        except Exception as err:  # the sweep goes on after a failed job; so does this loop
            log.exception("group %d failed", i)
            failed.append(f"  group_index={i}: {type(err).__name__}: {err}")
    if failed:
        raise JobsFailedError(f"{len(failed)} of {grouping.num_groups} groups failed (finished groups are kept; "
                              "rerun the same command to run only the unfinished ones):\n" + "\n".join(failed))
    return results
