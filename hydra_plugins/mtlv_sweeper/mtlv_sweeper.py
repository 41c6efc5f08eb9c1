"""Hydra sweeper for MTLV: Hydra's BasicSweeper, where a cell whose architecture trains one model
per task group (stl, gmtl) expands into one job per group (`group_index=i`), run by whatever
launcher is configured (basic, joblib, submitit). When the jobs return, each such cell is
aggregated into one result. Failed jobs do not stop the others; they are reported at the end, and
a rerun of the same command only runs what is unfinished."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, List

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from omegaconf import OmegaConf

from mtlv.errors import entry_point

log = logging.getLogger(__name__)


class GroupSweeper(BasicSweeper):
    @entry_point
    def sweep(self, arguments: List[str]) -> Any:
        from mtlv.checks import check_options

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(self._parse_config() + list(arguments))
        combos = [c for batch in self.split_arguments(overrides, None) for c in batch]
        configs = [self.hydra_context.config_loader.load_sweep_config(self.config, list(c)) for c in combos]
        for cfg in configs:  # every cell's options, before any folder is made or any job starts
            check_options(cfg)
        from mtlv.run.prepare import distinct_cells

        combos, configs, folded = distinct_cells(combos, configs)
        if folded:
            log.info("sweep: %d of %d cells differ only in options their architecture does not use (clustering "
                     "options of mtl and stl) and are run once: %d distinct cells", folded, folded + len(configs),
                     len(configs))

        from mtlv.run.aggregation import aggregate_cell
        from mtlv.errors import JobsFailedError, MTLVError, user_error
        from mtlv.io import write_json
        from mtlv.layout import SWEEP_CELLS
        from mtlv.run.prepare import (finished_jobs, grouping_workers, precompute_groupings, prepare_cell,
                                      prepare_tracking)
        from mtlv.run.reuse import job_model_keys, launch_waves
        from mtlv.run.stop import StopOnSigterm

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        precompute_groupings(configs, grouping_workers(self.config.hydra.launcher))
        jobs, cells, keys, kept = [], [], [], 0
        for combo, cfg in zip(combos, configs):
            reuse = bool(cfg.get("reuse_models") and cfg.resume)
            if cfg.get("task_name") != "train":  # a baseline sweep: no task groups, models or cells to prepare
                jobs.append(list(combo))
                keys.append([])
            elif cfg.arch.placement == "models":
                cell, grouping = prepare_cell(cfg)
                cells.append(cell.folder)
                done = finished_jobs(cfg, range(grouping.num_groups), cell)
                groups = [i for i in range(grouping.num_groups) if i not in done]
                kept += grouping.num_groups - len(groups)
                if cfg.arch.get("inprocess"):  # one job trains every unfinished group (mtlv/run/inprocess.py)
                    if groups:
                        jobs.append(list(combo))
                        keys.append(job_model_keys(cfg, grouping, groups) if reuse else [])
                else:
                    jobs += [[*combo, f"group_index={i}"] for i in groups]
                    keys += [job_model_keys(cfg, grouping, [i]) if reuse else [] for i in groups]
            else:
                prepare_tracking(cfg)
                if finished_jobs(cfg, [None]):
                    kept += 1
                    continue
                jobs.append(list(combo))
                keys.append(heads_keys(cfg) if reuse and len(configs) > 1 else [])
        write_json(sweep_dir / SWEEP_CELLS, [str(c) for c in cells])
        log.info("sweep: %d jobs (%d one-model-per-group cells) -> %s", len(jobs), len(cells), sweep_dir)
        if kept:
            log.info("sweep: %d jobs finished before with the same config are kept, not launched again "
                     "(resume=false retrains them)", kept)
        # Jobs that train the same model (reuse_models) are not launched together: the first of each
        # model trains it, the others start after it and reuse it.
        waves = launch_waves(keys)
        if len(waves) > 1:
            log.info("sweep: %d of %d jobs train a model another job of this sweep trains first; they are "
                     "launched after it and reuse it (reuse_models=false trains each)",
                     len(jobs) - len(waves[0]), len(jobs))

        returns, failed, start = [], [], 0
        size = self.max_batch_size or len(jobs) or 1
        stopping = StopOnSigterm()  # SIGTERM stops the jobs too, not the sweeper alone (mtlv/run/stop.py)
        try:
            with stopping:
                for wave in waves:
                    for i in range(0, len(wave), size):
                        batch = [jobs[j] for j in wave[i:i + size]]
                        results = self.launcher.launch(batch, initial_job_idx=start)
                        start += len(batch)
                        failed += [(r.overrides, r._return_value) for r in results if r.status == JobStatus.FAILED]
                        returns.append(results)
        except (KeyboardInterrupt, SystemExit) as err:  # Ctrl-C or SIGTERM: the launcher has stopped its jobs
            if (signum := stopping.stopped_by(err)) is None:
                raise
            # SLURM jobs are the cluster's, not this process's: those queued already go on.
            from mtlv.launch import is_cluster

            queued = ("; jobs already queued on SLURM go on (scancel stops them)"
                      if is_cluster(self.config.hydra.launcher) else "")
            print(f"stopped: {signum.name} ended the sweep; the jobs that finished are kept, and rerunning the "
                  f"same command runs only the unfinished ones{queued}", file=sys.stderr, flush=True)
            raise SystemExit(128 + signum) from None

        problems = []
        for folder in cells:
            try:
                aggregate_cell(folder, reuse=True)
            except MTLVError as err:
                problems.append(str(err))
        if failed:
            shown = [(o, user_error(e) or e) for o, e in failed]
            lines = [f"  {' '.join(o)}: {type(e).__name__}: {e}" for o, e in shown]
            problems.insert(0, f"{len(failed)} of {len(jobs)} jobs failed (finished jobs are kept; rerun the "
                               "same command to run only the unfinished ones):\n" + "\n".join(lines))
        if problems:
            raise JobsFailedError("\n".join(problems))
        return returns


def heads_keys(cfg) -> list:
    """The model key of an MTL/GMHL job, for ordering the launch; none when its data or options are bad:
    that job then fails on its own and is listed with the sweep's other failures (the rest still run)."""
    from mtlv.errors import user_error
    from mtlv.run.prepare import heads_grouping
    from mtlv.run.reuse import job_model_keys

    try:
        return job_model_keys(cfg, heads_grouping(cfg), [None])
    except Exception as err:  # noqa: BLE001 - only a user error (maybe wrapped by instantiate) is deferred
        if user_error(err) is None:
            raise
        return []
