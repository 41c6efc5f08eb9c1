"""What the sweeper does around Hydra's launcher: before the jobs of a one-model-per-group cell
start, compute its grouping once and open its parent MLflow run; after they finish, aggregate."""
from __future__ import annotations

import logging

from omegaconf import DictConfig

from mtlv import launch, tracking
from mtlv.config import flatten, identity, to_container
from mtlv.data.corpus import Corpus
from mtlv.data.load import load_corpus
from mtlv.grouping.partition import TaskGrouping
from mtlv.io import stable_hash, write_json
from mtlv.layout import CellLayout
from mtlv.run import record
from mtlv.run.cell import cell_grouping, finished_result, grouping_params
from mtlv.run.lock import hold_parent, opening_parent
from mtlv.run.spec import JobSpec

log = logging.getLogger(__name__)


def prepare_cell(spec: JobSpec, corpus: Corpus) -> TaskGrouping:
    """An STL/GMTL cell before its group jobs start: its grouping, computed once, and its parent MLflow run
    (the store and experiment created here, so parallel jobs never race to create them)."""
    cell = spec.cell
    grouping = cell_grouping(spec, corpus)
    parent = cell.layout.parent_run
    if spec.tracking is not None:
        uri, exp = spec.tracking.uri, spec.tracking.experiment_id
        with opening_parent(cell.layout):  # a second sweep preparing the cell now finds the first's run
            if not (parent.exists() and spec.resume):
                open_parent_run(spec.arch["name"], spec.data_name, spec.used, uri, exp, cell.run_name, cell.layout,
                                grouping, record.environment_params())
    log.info("%s: %d group jobs -> %s", cell.run_name, grouping.num_groups, cell.folder)
    return grouping


def open_parent_run(arch: str, dataset: str, used: dict, uri: str, experiment: str, run_name: str, cell: CellLayout,
                    grouping: TaskGrouping, env: dict, start_time: int | None = None) -> str:
    """The parent MLflow run of an STL/GMTL cell (its group job runs are its children, the aggregated result
    is logged to it), saved as the cell's parent_run.json: before a sweep's jobs start, or later from the
    cell's folder (`mtlv.track`). `used`: the cell's `config.used_config`; `dataset`: its `data_name`;
    `env`: `environment_params()` of the machine that trained the cell."""
    folder = cell.folder
    if hold_parent(cell):  # else the cell's RUNNING parent runs may be another live process's, in progress
        tracking.end_orphans(uri, experiment, {"mtlv.cell_dir": str(folder), "mtlv.role": "parent"})
    else:
        log.info("%s: another live process has the cell's parent run open (its lock %s is held): its runs are "
                 "left as they are", folder, cell.parent_lock)
    run_id = tracking.create_run(uri, experiment, run_name, {"arch": arch, "dataset": dataset,
                                                              "cell": folder.name, "mtlv.cell_dir": str(folder),
                                                              "mtlv.role": "parent"}, start_time=start_time)
    params = flatten({k: v for k, v in used.items() if k not in ("group_index", "reuse_models")})
    params.update(record.group_params(grouping))
    params["num_groups"] = grouping.num_groups
    params.update(grouping_params(folder))
    params.update(env)
    artifacts = [cell.groups_yaml] + cell.grouping_files.artifacts()
    record.log_result(uri, run_id, params=params, artifacts=artifacts)
    write_json(cell.parent_run, {"run_id": run_id, "tracking_uri": uri})
    return run_id


def distinct_cells(combos: list, configs: list[DictConfig]) -> tuple[list, list[DictConfig], int]:
    """The sweep's cells less those that differ from an earlier one only in options their architecture does not
    use (`config.used_config`): such cells are one job, so only the first is launched (two launches of one job
    trained it twice and clashed in its MLflow run). Returns (combos, configs, how many were folded)."""
    seen, keep = set(), []
    for i, cfg in enumerate(configs):
        key = stable_hash([cfg.get("task_name"), identity(cfg)])
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return [combos[i] for i in keep], [configs[i] for i in keep], len(configs) - len(keep)


def finished_jobs(spec: JobSpec, group_indices) -> set:
    """Which of the cell's jobs for `group_indices` (None: its one model) finished with this config before:
    their saved summaries are printed here and the sweeper does not launch them. On a rerun of a big sweep
    that is most jobs, and each launched one would cost a launcher job for nothing (on SLURM a queued job
    each, on joblib a worker's config composition and data loading)."""
    group_indices = list(group_indices)
    done = set()
    for index, key in zip(group_indices, spec.job_keys(group_indices)):
        layout = spec.cell.job(index)
        if (result := finished_result(spec, layout, key)) is not None and layout.metrics_json.exists():
            record.print_job(result, layout.metrics(), rerun=True)
            done.add(index)
    return done


def cell_spec(cfg: DictConfig) -> JobSpec | None:
    """A sweep cell's spec, resolved once (its options were checked with every other cell's, first): the corpus
    and the options that depend on its labels are checked here. None for a baseline cell, and for an MTL/GMHL
    cell whose data or labels the checks refuse: its job then fails on its own and is listed with the sweep's
    other failures (the rest still run); an STL/GMTL cell's refusal ends the sweep before any job starts."""
    from mtlv.errors import user_error

    if cfg.get("task_name") != "train":
        return None
    if cfg.arch.placement == "models":
        return JobSpec.resolve(cfg, options_checked=True)
    try:  # its job says which clustering options it ignores
        return JobSpec.resolve(cfg, say_ignored=False, options_checked=True)
    except Exception as err:  # noqa: BLE001 - only a user error (maybe wrapped by instantiate) is deferred
        if user_error(err) is None:
            raise
        return None


def _compute_grouping(container: dict, spec: JobSpec) -> None:
    from omegaconf import OmegaConf

    from mtlv.errors import user_error

    try:
        cell_grouping(spec, load_corpus(OmegaConf.create(container)))
    except Exception as err:  # noqa: BLE001 - bad data or options: reported by the cell's preparation or its job
        if user_error(err) is None:
            raise


def precompute_groupings(cells: list[tuple[DictConfig, JobSpec | None]], workers: int) -> int:
    """Compute the learned groupings of a sweep's cells (config and spec) in `workers` processes, before the
    sweeper prepares the cells one by one. Profiled on Open-I: a grouping costs ~0.5-1.4 s, three quarters
    of it drawing its three plots, and a beyond-the-thesis sweep has ~130 cells per fold, all computed before
    the first job starts while the launcher's workers (and a GPU) wait. Each grouping is saved in its cell
    folder under a lock, so the serial pass then only reads it. Returns the number computed here."""
    todo = {}
    for cfg, spec in cells:
        if spec is None or spec.arch["grouping"] != "clustering":
            continue
        if not spec.cell.layout.groups_yaml.exists():
            todo.setdefault(str(spec.cell.folder), (cfg, spec))
    if workers <= 1 or len(todo) <= 1:
        return 0
    from joblib import Parallel, delayed

    log.info("computing %d task groupings in %d processes", len(todo), min(workers, len(todo)))
    Parallel(n_jobs=min(workers, len(todo)), backend="loky")(
        delayed(_compute_grouping)(to_container(cfg), spec) for cfg, spec in todo.values())
    return len(todo)


def grouping_workers(launcher) -> int:
    """Processes for `precompute_groupings`: the joblib launcher's (its workers are idle until the launch);
    1 (in the sweeper's process) under other launchers, e.g. on SLURM's login node."""
    return launch.joblib_workers(launcher, launch.cores()) or 1
