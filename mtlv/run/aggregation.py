"""Aggregating a one-model-per-group cell (STL, GMTL) into one result comparable with MTL/GMHL:
join the group jobs' validation and test probabilities into the full label matrix, choose the
threshold on validation, compute the same metrics, log them to the cell's parent MLflow run.
Called by the sweeper when a sweep's jobs return, and by `python -m mtlv.aggregate`.
"""
from __future__ import annotations

import logging
from pathlib import Path

import yaml

from mtlv import tracking
from mtlv.errors import MissingResultsError, MTLVError
from mtlv.evaluation.evaluate import evaluate
from mtlv.evaluation.predictions import Predictions, join
from mtlv.grouping.partition import TaskGrouping
from mtlv.io import read_json, write_json
from mtlv.run import record
from mtlv.layout import SWEEP_CELLS, CellLayout, JobLayout

log = logging.getLogger(__name__)


def group_results(folder: Path, grouping: TaskGrouping) -> list[dict]:
    results, missing = [], []
    for i, names in enumerate(grouping.named_groups()):
        job = CellLayout(folder).group_dir(i)
        if job.result_json.exists():
            results.append(job.result())
        else:
            missing.append(f"group {i} ({', '.join(names)})")
    if missing:
        raise MissingResultsError(
            f"cannot aggregate {folder}: {len(missing)} of {grouping.num_groups} group jobs have not finished: "
            f"{'; '.join(missing)}. Rerun the same sweep command to run only those jobs.")
    return results


def aggregate_cell(folder: str | Path, reuse: bool = False) -> dict:
    """`reuse`: when the cell was already aggregated from these same group results (a rerun of a finished
    sweep), print its saved summary instead of aggregating and logging it again."""
    folder = Path(folder)
    cell = CellLayout(folder)
    if not cell.groups_yaml.exists():
        raise MTLVError(f"{folder} is not a sweep cell folder (no {cell.groups_yaml.name})")
    grouping = TaskGrouping.load(cell.groups_yaml)
    if grouping.placement == "heads":
        return one_model_result(folder)
    if folder.name.startswith("group-") and CellLayout(folder.parent).groups_yaml.exists():
        raise MTLVError(f"{folder} is one group job of the STL/GMTL cell {folder.parent}; a cell is aggregated as a "
                        f"whole: python -m mtlv.aggregate {folder.parent}")
    results = group_results(folder, grouping)
    done = [[r.get("key"), r["end"]] for r in results]  # a group job retrained since has another end time
    saved, parent = cell.aggregate_json, cell.parent_run
    if reuse and saved.exists() and cell.metrics_json.exists():
        summary = cell.aggregate()  # reused only when logged to the cell's current parent run (if any)
        run_id = read_json(parent)["run_id"] if parent.exists() else None
        if summary.get("jobs") == done and summary.get("run_id") == run_id:
            record.print_cell(summary, cell.metrics(), folder, parent, grouping.num_groups, rerun=True)
            return summary
    jobs = cell.group_dirs(grouping.num_groups)
    labels = list(grouping.label_names)
    val, test = (join([Predictions.load(j.predictions(part)) for j in jobs], labels, [j.predictions(part) for j in jobs])
                 for part in ("val", "test"))
    job_cfg = yaml.safe_load(jobs[0].config_yaml.read_text())
    report = evaluate(val, test, [list(g) for g in grouping.groups], job_cfg["eval"]["threshold"])
    timing = {"elapsed_s": max(r["end"] for r in results) - min(r["start"] for r in results),
              "sum_job_s": sum(r["elapsed_s"] for r in results), "num_jobs": len(results)}
    # The cell's size: its group models' parameters added up; unknown when any job lacks its count.
    sizes = [r.get("trainable_params") for r in results]
    params = int(sum(sizes)) if all(s is not None for s in sizes) else None
    record.save_evaluation(cell, val, test, report, plot_title=f"{results[0]['run_name']}: test F1 per label")
    summary = {"run_name": results[0]["run_name"], "threshold": report["threshold"], **timing,
               **({"trainable_params": params} if params is not None else {}),
               **{k: record.headline(report[k]) for k in ("test", "val", "test_at_0.5")}, "jobs": done}
    if parent.exists():
        info = read_json(parent)
        metrics = record.result_metrics(report, params, elapsed_s=timing["elapsed_s"], sum_job_s=timing["sum_job_s"])
        record.log_result(info["tracking_uri"], info["run_id"], params={"eval.chosen_threshold": report["threshold"]},
                          metrics=metrics, artifacts=cell.evaluation_files(), label_names=labels, files=cell,
                          end=True)
        summary["run_id"] = info["run_id"]
    write_json(saved, summary)
    record.print_cell(summary, report, folder, parent, grouping.num_groups)
    return summary


def one_model_result(folder: Path) -> dict:
    """An MTL/GMHL cell (or its job folder): one model for all the labels, so nothing to aggregate; its
    result, where it is, is printed instead."""
    job = CellLayout(folder).model_job if CellLayout(folder).model_job.folder.is_dir() else JobLayout(folder)
    what = f"{folder} is {'the job of ' if job.folder == folder else ''}an MTL/GMHL cell"
    if not job.result_json.exists():
        raise MissingResultsError(f"{what}: one model for all its labels, which needs no aggregation, and it has not "
                                  f"finished ({job.folder} has no {job.result_json.name}); rerun the same training "
                                  "command to finish it (it resumes)")
    print(f"{what}: one model for all its labels, so there is nothing to aggregate. Its result is in {job.folder} "
          f"({job.result_json.name}, {job.metrics_json.name}):", flush=True)
    result = job.result()
    record.print_job(result, job.metrics())
    return result


def find_cells(target: str, tracking_uri: str | None) -> list[Path]:
    path = Path(target)
    if CellLayout(path).groups_yaml.exists():
        return [path]
    if (path / SWEEP_CELLS).exists():
        return [Path(p) for p in read_json(path / SWEEP_CELLS)]
    if path.exists():
        raise MTLVError(f"{path} is neither a cell folder (with {CellLayout(path).groups_yaml.name}) nor a sweep "
                        f"folder (with {SWEEP_CELLS})")
    if tracking_uri is None:
        from mtlv.config import compose

        tracking_uri = compose().tracking.uri
    try:
        run = tracking.read_client(tracking_uri, "--tracking-uri").get_run(target)
    except Exception as err:
        raise MTLVError(f"{target!r} is not a folder, and not a run id in the MLflow store {tracking_uri} "
                        f"(use --tracking-uri for another store): {err}") from err
    cell = run.data.tags.get("mtlv.cell_dir")
    if not cell:
        raise MTLVError(f"run {target} is not the parent run of an STL/GMTL sweep (no mtlv.cell_dir tag)")
    return [Path(cell)]

