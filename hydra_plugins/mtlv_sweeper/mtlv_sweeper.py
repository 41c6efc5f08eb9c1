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
        from mtlv.data.load import load_corpus
        from mtlv.run.cell import cell_grouping
        from mtlv.run.prepare import cell_spec, finished_jobs, grouping_workers, precompute_groupings, prepare_cell
        from mtlv.run.reuse import launch_waves
        from mtlv.run.stop import StopOnSigterm

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        specs = [cell_spec(cfg) for cfg in configs]  # each cell resolved once: corpus and label checks, keys
        precompute_groupings(list(zip(configs, specs)), grouping_workers(self.config.hydra.launcher))
        jobs, cells, keys, kept = [], [], [], 0
        for combo, cfg, spec in zip(combos, configs, specs):
            if cfg.get("task_name") != "train":  # a baseline sweep: no task groups, models or cells to prepare
                jobs.append(list(combo))
                keys.append([])
            elif spec is None:  # an MTL/GMHL cell the checks refuse: its job fails on its own, the rest run
                jobs.append(list(combo))
                keys.append([])
            elif spec.arch["placement"] == "models":
                grouping = prepare_cell(spec, load_corpus(cfg))
                cells.append(spec.cell.folder)
                done = finished_jobs(spec, range(grouping.num_groups))
                groups = [i for i in range(grouping.num_groups) if i not in done]
                kept += grouping.num_groups - len(groups)
                if spec.arch.get("inprocess"):  # one job trains every unfinished group (mtlv/run/inprocess.py)
                    if groups:
                        jobs.append(list(combo))
                        keys.append(spec.model_keys(grouping, groups) if spec.reuses else [])
                else:
                    jobs += [[*combo, f"group_index={i}"] for i in groups]
                    keys += [spec.model_keys(grouping, [i]) if spec.reuses else [] for i in groups]
            else:
                if spec.tracking is not None:
                    spec.tracking.experiment_id  # noqa: B018 - the store and experiment made before the jobs start
                if finished_jobs(spec, [None]):
                    kept += 1
                    continue
                jobs.append(list(combo))
                reuse = spec.reuses and len(configs) > 1
                keys.append(spec.model_keys(cell_grouping(spec, load_corpus(cfg)), [None]) if reuse else [])
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

