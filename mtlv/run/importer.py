"""Record results trained without MLflow (`logger=none`, e.g. on a GPU node where MLflow is not
installed) into an MLflow store afterwards, exactly as the trained jobs would have logged them:
`python -m mtlv.track <runs folder | cell folder>`.

Every finished job (result.json) without a run in this store gets one, with the params, metrics,
artifacts, tags and times a trained job logs (the same functions write them: `record.log_job`,
`prepare.open_parent_run`, `aggregate_cell`). The metrics are recomputed from the saved predictions
and must agree with the job's metrics.json. The folder tags name the folders where they are now.
Everything is checked before anything is logged; a second call logs nothing new.
"""
from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mtlv import tracking
from mtlv.errors import ConfigError, DataError
from mtlv.evaluation.evaluate import evaluate
from mtlv.evaluation.predictions import Predictions
from mtlv.grouping.partition import TaskGrouping
from mtlv.io import read_json, write_json
from mtlv.run import record
from mtlv.layout import GROUPS_YAML, MODEL_DIR, CellLayout, JobLayout


@dataclass
class JobRun:
    """A finished job to log: its folder, its config (with this store's logger), result and re-evaluation."""

    job: JobLayout
    cfg: DictConfig
    result: dict
    report: dict
    grouping: TaskGrouping


@dataclass
class CellPlan:
    layout: CellLayout
    grouping: TaskGrouping
    jobs: list[JobLayout]
    unfinished: list[JobLayout] = field(default_factory=list)
    parent_id: str | None = None          # STL/GMTL: the parent run already in this store
    aggregated: bool = False              # ... and it has the aggregated result
    todo: list[JobRun] = field(default_factory=list)

    @property
    def one_model_per_group(self) -> bool:
        return self.grouping.placement == "models"


def is_cell(folder: Path) -> bool:
    layout = CellLayout(folder)
    return layout.groups_yaml.exists() and (layout.model_job.folder.is_dir() or layout.group_dir(0).folder.is_dir())


def find_cells(folder: str | Path) -> list[CellLayout]:
    """The cell folders at or below `folder` (a job folder also holds a groups.yaml, but no jobs)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder. Pass a runs folder (e.g. outputs/runs) or one cell folder.")
    found = sorted({p.parent for p in folder.rglob(GROUPS_YAML)} | {folder})
    cells = [CellLayout(p) for p in found if is_cell(p)]
    if not cells:
        raise ConfigError(f"{folder} holds no cell folder (a folder with {GROUPS_YAML} and its job folder "
                          f"{MODEL_DIR}/ or {CellLayout(folder).group_dir(0).name}/ ...). Pass a runs folder "
                          "(e.g. outputs/runs) or one cell folder.")
    return cells


def logged_run(uri: str, run_file: Path):
    """The run that `run_file` (a job's mlflow_run.json, a cell's parent_run.json) names, if it is in this store."""
    if not run_file.exists():
        return None
    saved = read_json(run_file)
    if not tracking.same_store(saved.get("tracking_uri", ""), uri):
        return None
    return tracking.existing_run(uri, saved["run_id"])


def job_config(job: JobLayout, defaults: DictConfig, uri: str, experiment: str | None) -> DictConfig:
    """The job's resolved config with the logger it would have had when trained into this store (its
    config.yaml says `logger: null` when it was trained with logger=none)."""
    cfg = OmegaConf.load(job.config_yaml)
    if recorded := job.result().get("dataset"):  # its `data_name`, computed from the data when it ran
        cfg.dataset.name = recorded
    cfg.tracking.uri = uri
    cfg.tracking.artifact_location = defaults.tracking.artifact_location
    cfg.logger = OmegaConf.to_container(defaults.logger, resolve=False)  # experiment_name: ${dataset.name}
    if experiment:
        cfg.logger.experiment_name = experiment
    OmegaConf.resolve(cfg)
    return cfg


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=0, abs_tol=1e-9)


def reevaluate(job: JobLayout, cfg: DictConfig, grouping: TaskGrouping) -> dict:
    """The job's evaluation recomputed from its saved predictions, checked against its metrics.json."""
    _, heads = grouping.job_labels(cfg.group_index)
    val, test = (Predictions.load(job.predictions(part)) for part in ("val", "test"))
    report = evaluate(val, test, heads, cfg.eval.threshold)
    saved = job.metrics()["test"]["f1_macro"]
    if not _same(report["test"]["f1_macro"], saved):
        raise DataError(f"{job.folder}: the test F1-macro recomputed from {job.predictions('test').name} is "
                        f"{report['test']['f1_macro']:.6f}, but {job.metrics_json.name} says {saved:.6f}: the job's "
                        "files do not belong together (edited, or copied from different runs). Copy the job "
                        "folder again, or retrain it; nothing was logged.")
    return report


def load_job(job: JobLayout, defaults: DictConfig, uri: str, experiment: str | None) -> JobRun:
    needed = [job.config_yaml, job.groups_yaml, job.metrics_json, job.label_counts, job.predictions("val"),
              job.predictions("test")]
    missing = [p.name for p in needed if not p.exists()]
    if missing:
        raise DataError(f"{job.folder} has a result.json but no {', '.join(missing)}: copy the whole job folder; "
                        "nothing was logged.")
    cfg = job_config(job, defaults, uri, experiment)
    grouping = TaskGrouping.load(job.groups_yaml)
    return JobRun(job, cfg, job.result(), reevaluate(job, cfg, grouping), grouping)


def plan_cell(layout: CellLayout, defaults: DictConfig, uri: str, experiment: str | None) -> CellPlan:
    grouping = TaskGrouping.load(layout.groups_yaml)
    models = grouping.placement == "models"
    jobs = layout.group_dirs(grouping.num_groups) if models else [layout.model_job]
    plan = CellPlan(layout, grouping, jobs, unfinished=[j for j in jobs if not j.result_json.exists()])
    if plan.unfinished:
        return plan
    if models and (parent := logged_run(uri, layout.parent_run)) is not None:
        plan.parent_id, plan.aggregated = parent.info.run_id, "test/f1_macro" in parent.data.metrics
    for job in jobs:
        run = logged_run(uri, job.mlflow_run)
        if run is None or (models and run.data.tags.get("mlflow.parentRunId") != plan.parent_id):
            plan.todo.append(load_job(job, defaults, uri, experiment))
    return plan


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def log_job(item: JobRun, layout: CellLayout, uri: str, experiment: str) -> str:
    """One job's run, as `run_job` logs it (tags from `job_tags`, params/metrics/artifacts from `record.log_job`)."""
    from mtlv.config import used_config
    from mtlv.data.load import data_name
    from mtlv.run.cell import Cell
    from mtlv.run.outcome import job_tags

    result, job, cfg = item.result, item.job, item.cfg
    cell = Cell(result["run_name"], layout.name[len(result["run_name"]) + 1:], layout, item.grouping.placement)
    tracking.end_orphans(uri, experiment, {"mtlv.job_dir": str(job.folder), "mtlv.role": "job"})
    name = record.job_run_name(result["run_name"], result.get("group_index"), result.get("labels") or [])
    tags = job_tags(cfg.arch.name, data_name(cfg), cell, job, cfg.group_index)
    run_id = tracking.create_run(uri, experiment, name, tags, start_time=_ms(result["start"]))
    split = result.get("split") or record.split_from_counts(job.label_counts)
    record.log_job(used_config(cfg), uri, run_id, layout, job, item.grouping, item.report, result["elapsed_s"], split,
                   result.get("env") or {}, trainable_params=result.get("trainable_params"))
    tracking.end_run(uri, run_id, end_time=_ms(result["end"]))
    write_json(job.mlflow_run, {"run_id": run_id, "tracking_uri": uri})
    write_json(job.result_json, {**result, "run_id": run_id})
    return run_id


def log_cell(plan: CellPlan, uri: str) -> tuple[int, str]:
    """Log what the cell lacks in this store: the number of runs created, and a line saying what was done."""
    from mtlv.run.aggregation import aggregate_cell
    from mtlv.config import used_config
    from mtlv.data.load import data_name, experiment_name
    from mtlv.run.prepare import open_parent_run

    if not plan.todo and (plan.aggregated or not plan.one_model_per_group):
        return 0, "nothing new (already in the store)"
    first = plan.todo[0] if plan.todo else None
    experiment = None
    if first is not None:
        experiment = tracking.experiment_id(uri, experiment_name(first.cfg), first.cfg.tracking.artifact_location)
    created = []
    if plan.one_model_per_group and plan.parent_id is None:
        results = [item.result for item in plan.todo]
        env = next((r["env"] for r in results if r.get("env")), {})
        open_parent_run(first.cfg.arch.name, data_name(first.cfg), used_config(first.cfg), uri, experiment, first.result["run_name"], plan.layout, plan.grouping, env,
                        start_time=_ms(min(r["start"] for r in results)))
        created.append("parent")
    for item in plan.todo:
        log_job(item, plan.layout, uri, experiment)
    created += [f"{len(plan.todo)} job{'s' if len(plan.todo) != 1 else ''}"] if plan.todo else []
    if plan.one_model_per_group:
        with contextlib.redirect_stdout(io.StringIO()):  # its console summary is the training's, not ours
            aggregate_cell(plan.layout.folder)
        parent = read_json(plan.layout.parent_run)["run_id"]
        ends = [read_json(j.result_json)["end"] for j in plan.jobs]
        tracking.end_run(uri, parent, end_time=_ms(max(ends)))
    count = len(plan.todo) + ("parent" in created)
    text = f"{count} run{'s' if count != 1 else ''} created ({' + '.join(created)})" if count else "no run created"
    return count, text + (", aggregated result logged to the parent run" if plan.one_model_per_group else "")


def track(folder: str | Path, tracking_uri: str | None = None, experiment: str | None = None) -> int:
    """Log every finished, not yet logged job below `folder` into the store; the number of runs created."""
    from mtlv.config import compose

    cells = find_cells(folder)
    defaults = compose()
    uri = tracking.resolve_uri(tracking_uri or defaults.tracking.uri, None)
    plans = [plan_cell(layout, defaults, uri, experiment) for layout in cells]  # every check before any logging
    created = 0
    for plan in plans:
        if plan.unfinished:
            names = ", ".join(j.name for j in plan.unfinished)
            print(f"{plan.layout.name}: not finished ({names} without result.json): skipped", flush=True)
            continue
        count, line = log_cell(plan, uri)
        created += count
        print(f"{plan.layout.name}: {line}", flush=True)
    done = sum(not p.unfinished for p in plans)
    if created:
        print(f"tracked {done} cell(s) into {uri}: {created} run(s) created", flush=True)
    else:
        print(f"nothing new: the {done} finished cell(s) are already in {uri}", flush=True)
    return created
