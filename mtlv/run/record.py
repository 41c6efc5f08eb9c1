"""Recording a result, the same way for a training job, an aggregated STL/GMTL cell, a sweep cell's
parent run and a classical baseline: its files (predictions, classification report, metrics.json,
per-label F1 plot), its MLflow params, metrics and artifacts, and the console summary, which is
printed again from the saved files when a rerun finds the result finished, so a returning user sees
the same metrics, run id and UI command."""
from __future__ import annotations

import logging
from pathlib import Path

from mtlv import tracking
from mtlv.config import flatten
from mtlv.evaluation.metrics import constant_labels_note, flat_metrics
from mtlv.evaluation.plots import plot_per_label_f1
from mtlv.evaluation.predictions import Predictions
from mtlv.evaluation.report import classification_report, metrics_table
from mtlv.io import read_json, write_json, write_text
from mtlv.layout import CellLayout, JobLayout, ResultFiles
from mtlv.provenance import run_environment

log = logging.getLogger(__name__)

# The metrics a result.json / aggregate.json keeps of each evaluated split.
HEADLINE = ("f1_macro", "f1_micro", "subset_accuracy", "n_undefined")
# Trainable parameters of a result's model(s): a job's module, the sum over an STL/GMTL cell's group models,
# a classical baseline's coefficients. Absent where unknown (runs recorded before it was), never guessed.
PARAMS_METRIC = "model/trainable_params"
NOT_RETRAINED = "already finished with the same config: not retrained, this is its saved result (resume=false retrains)"


def job_run_name(run_name: str, group_index: int | None, labels: list[str], shown: int = 2) -> str:
    """A job's MLflow run name: the cell's; a group job of an STL/GMTL cell adds its group index (as in
    `group_index=i` and `group-0i/`) and first labels, so that its parent's children can be told apart:
    `gmtl-minilm-description-k2/g1: Cardiomegaly, Nodule, +3`."""
    if group_index is None:
        return run_name
    more = f", +{len(labels) - shown}" if len(labels) > shown else ""
    return f"{run_name}/g{group_index}: {', '.join(labels[:shown])}{more}"


def headline(metrics: dict) -> dict:
    return {k: metrics[k] for k in HEADLINE}


def save_evaluation(files: ResultFiles, val: Predictions, test: Predictions, report: dict,
                    plot_title: str | None = None) -> None:
    """Predictions, classification report and metrics.json (the evaluation `report`), and the test F1
    per label plot when `plot_title` is given."""
    val.save(files.predictions("val"))
    test.save(files.predictions("test"))
    write_text(files.classification_report, classification_report(report["test"]).to_csv(index=False))
    write_json(files.metrics_json, report)
    if plot_title is not None:
        plot_per_label_f1(report["test"], files.per_label_f1, title=plot_title)


def warn_constant_labels(counts) -> None:
    """A warning under a job's label table (`label_count_table`) naming the labels on every or on no test
    document, and how they enter F1-macro (`metrics.constant_labels_note`)."""
    from mtlv.data.splits import constant_labels

    if note := constant_labels_note(*constant_labels(counts)):
        log.warning(note)


def environment_params() -> dict:
    return {f"env.{k}": v for k, v in run_environment().items()}


def group_params(grouping) -> dict:
    """The task groups by label name, one MLflow param per group."""
    return {f"group.{i}": ", ".join(g) for i, g in enumerate(grouping.named_groups())}


def result_metrics(report: dict, trainable_params: int | None = None, **times: float) -> dict:
    """The MLflow metrics of an evaluated result: test at the chosen threshold and at 0.5, validation at
    the chosen threshold, `times` as time/<name>, and the trainable parameters where known."""
    return {**flat_metrics(report["test"], "test"), **flat_metrics(report["test_at_0.5"], "test_at_0.5"),
            **flat_metrics(report["val"], "val_best"), **{f"time/{k}": v for k, v in times.items()},
            **({PARAMS_METRIC: trainable_params} if trainable_params is not None else {})}


def log_result(uri: str, run_id: str, params: dict | None = None, metrics: dict | None = None,
               artifacts: list[Path] | None = None, label_names: list[str] | None = None,
               files: ResultFiles | None = None, end: bool = False) -> None:
    """Params, metrics and artifacts into an MLflow run; with `label_names`, the per-label metric keys'
    map (label_keys.json, in `files`) is written first and logged with them. `end`: finish the run."""
    artifacts = list(artifacts or [])
    if label_names is not None and files is not None:
        write_json(files.label_keys, tracking.label_keys(list(label_names)))
        artifacts += [] if files.label_keys in artifacts else [files.label_keys]  # the report maps keys back with it
    tracking.log_to_run(uri, run_id, params=params, metrics=metrics, artifacts=artifacts)
    if end:
        tracking.end_run(uri, run_id)


def split_info(split) -> dict:
    """A job's split as recorded with its run: the cached split file (None: none) and the part sizes."""
    return {"file": str(split.path) if split.path else None, **split.sizes()}


def split_from_counts(counts_csv: Path) -> dict:
    """The part sizes of a job's split from its label_counts.csv (the `(documents)` row), for a job whose
    result.json predates `split_info` (the split file itself is then not known)."""
    import pandas as pd

    docs = pd.read_csv(counts_csv, index_col=0).loc["(documents)"]
    return {"file": None, **{part: int(docs[part]) for part in ("train", "val", "test")}}


def provenance(split) -> dict:
    """What result.json keeps so that a job trained without MLflow can be logged later exactly as it would
    have been (`python -m mtlv.track`): the split and the training machine's environment."""
    return {"split": split_info(split), "env": environment_params()}


def log_job(used: dict, uri: str, run_id: str, cell: CellLayout, job: JobLayout, grouping, report: dict,
            elapsed: float, split: dict, env: dict, trainable_params: int | None = None) -> None:
    """A training job's params, metrics and artifacts into its MLflow run: right after training, or later
    from its folder (`mtlv.track`). `used`: the job's `config.used_config`; `split`: `split_info`; `env`:
    `environment_params()` of the machine that trained it; `trainable_params`: its result.json's."""
    from mtlv.run.cell import grouping_params

    # reuse_models is volatile: a job resumed with the other value logs to the same run (no param conflict)
    params = flatten({k: v for k, v in used.items() if k != "reuse_models"})
    params.update(group_params(grouping))
    params.update(env)
    params["eval.chosen_threshold"] = report["threshold"]
    params.update(grouping_params(cell.folder))
    params["split.file"] = split["file"] or "none"
    params.update({f"split.n_{k}": split[k] for k in ("train", "val", "test")})
    artifacts = [job.config_yaml, job.groups_yaml, job.label_counts, job.classification_report,
                 job.predictions("val"), job.predictions("test"), job.metrics_json, job.per_label_f1, job.label_keys]
    artifacts += [Path(split["file"])] if split["file"] else []
    artifacts += cell.grouping_files.artifacts()
    log_result(uri, run_id, params=params, metrics=result_metrics(report, trainable_params, elapsed_s=elapsed),
               artifacts=artifacts, label_names=grouping.label_names, files=job)


def print_summary(title: str, report: dict, folder: str | Path, timing: str, run_id: str | None = None,
                  uri: str | None = None, run_label: str = "MLflow run id", rerun: bool = False) -> None:
    """`report`: the evaluation saved as metrics.json (test, test_at_0.5, val, threshold)."""
    table = metrics_table({"test @ val-chosen threshold": report["test"], "test @ 0.5": report["test_at_0.5"],
                           "validation (best)": report["val"]})
    lines = [f"\n== {title}", f"threshold chosen on validation: {report['threshold']}", table,
             f"outputs: {folder}  ({timing})"]
    if run_id:
        lines.append(f"{run_label}: {run_id}")
    if uri:
        lines.append(f"MLflow UI: {tracking.ui_command(uri)}")
    if rerun:
        lines.append(NOT_RETRAINED)
    print("\n".join(lines), flush=True)


def saved_uri(run_file: Path) -> str | None:
    """The store a job or cell logged to, from its mlflow_run.json / parent_run.json (None: no MLflow)."""
    return read_json(run_file)["tracking_uri"] if run_file.exists() else None


def print_job(result: dict, report: dict, rerun: bool = False) -> None:
    """A training job's summary: after training, and on a rerun from its result.json and metrics.json."""
    labels, group = result["labels"], result["group_index"]
    title = (f"{result['run_name']}" + (f" group {group}" if group is not None else "")
             + f" ({', '.join(labels[:6])}{', ...' if len(labels) > 6 else ''})")
    files = ResultFiles(result["folder"])
    uri = saved_uri(files.mlflow_run) if result.get("run_id") else None
    print_summary(title, report, files.folder, f"{result['elapsed_s']:.1f} s", result.get("run_id"), uri, rerun=rerun)


def print_cell(summary: dict, report: dict, folder: Path, parent_run: Path, num_groups: int,
               rerun: bool = False) -> None:
    """An aggregated STL/GMTL cell's summary (`summary`: its aggregate.json)."""
    print_summary(f"{summary['run_name']}: {num_groups} group models aggregated", report, folder,
                  f"{summary['elapsed_s']:.1f} s elapsed, {summary['sum_job_s']:.1f} s summed over jobs",
                  summary.get("run_id"), saved_uri(parent_run) if "run_id" in summary else None,
                  run_label="MLflow parent run id", rerun=rerun)


def print_baseline(run_name: str, detail: str, report: dict, folder: Path, elapsed: float,
                   run_id: str | None) -> None:
    """A classical baseline's summary (test at the chosen threshold and at 0.5)."""
    print(f"\n== {run_name} ({detail})\nthreshold chosen on validation: "
          f"{report['threshold']}\n" + metrics_table({"test @ val-chosen threshold": report["test"],
                                                     "test @ 0.5": report["test_at_0.5"]})
          + f"\noutputs: {folder}  ({elapsed:.1f} s)" + (f"\nMLflow run id: {run_id}" if run_id else ""), flush=True)
