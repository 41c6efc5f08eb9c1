"""Train: `python -m mtlv.train [overrides]`. MTL/GMHL run as one job; STL/GMTL as a sweep of
one job per task group, aggregated at the end (see hydra_plugins/mtlv_sweeper)."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

import mtlv.config  # noqa: F401  (registers resolvers before Hydra composes)
from mtlv.cli import command_line_checked
from mtlv.config import CONF_DIR
from mtlv.errors import entry_point


@command_line_checked  # options Hydra types itself, before it composes
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
@entry_point
def main(cfg: DictConfig) -> float | None:
    from mtlv.run.inprocess import run_groups, wants_inprocess
    from mtlv.run.job import run_job
    from mtlv.run.outcome import record_failure
    from mtlv.run.spec import JobSpec
    from mtlv.run.stop import stop_job

    with stop_job():  # a plain job: SIGTERM and Ctrl-C exit 143/130 with a `stopped:` line (mtlv/run/stop.py)
        spec = JobSpec.resolve(cfg)  # the checks, once; the job's keys, folders, tracking and launch facts
        if wants_inprocess(spec):  # arch.inprocess=true: every group of the cell in this one job
            results = run_groups(cfg, spec)
            return sum(r["test"]["f1_macro"] for r in results) / len(results)
        try:
            return run_job(cfg, spec)["test"]["f1_macro"]
        except Exception as err:
            record_failure(spec, err)  # failed.json in the job folder: a study shows the failure at once
            raise

if __name__ == "__main__":
    main()
