"""Train: `python -m mtlv.train [overrides]`. MTL/GMHL run as one job; STL/GMTL as a sweep of
one job per task group, aggregated at the end (see hydra_plugins/mtlv_sweeper)."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

import mtlv.config  # noqa: F401  (registers resolvers before Hydra composes)
from mtlv.config import CONF_DIR


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    from mtlv.errors import full_errors, report_and_exit, user_error
    from mtlv.inprocess import run_groups, wants_inprocess
    from mtlv.job import run_job

    try:
        if wants_inprocess(cfg):  # arch.inprocess=true: every group of the cell in this one job
            results = run_groups(cfg)
            return sum(r["test"]["f1_macro"] for r in results) / len(results)
        result = run_job(cfg)
    except Exception as err:
        # One sweep job: hand the error (unwrapped from Hydra's InstantiationException) to the
        # sweeper, which lists failed jobs at the end. One run: `error: <message>`, exit code 2.
        if _multirun():
            user = user_error(err)
            if user is None or user is err or full_errors():
                raise
            raise user from None
        report_and_exit(err)
        raise
    return result["test"]["f1_macro"]


def _multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


if __name__ == "__main__":
    main()
