"""A job's outcome: its validation and test predictions, their evaluation, and their record (files, exported
model, result.json, MLflow run, console summary). A trained job and a job that reuses another's model end
in the same `record_job`; `result.json`, written last, marks the job finished.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Callable, Iterator

import lightning as L
import numpy as np
import torch

from mtlv import tracking
from mtlv.data.datamodule import MultiLabelDataModule
from mtlv.data.splits import Split
from mtlv.evaluation.evaluate import evaluate
from mtlv.evaluation.predictions import Predictions
from mtlv.grouping.partition import TaskGrouping
from mtlv.io import read_json, write_json
from mtlv.layout import JobLayout
from mtlv.models.encoder import load_tokenizer
from mtlv.models.export import export_model
from mtlv.run import cost, record
from mtlv.run.cell import Cell
from mtlv.run.distributed import gather_by_document
from mtlv.run.reuse import register
from mtlv.run.spec import JobSpec

log = logging.getLogger(__name__)


def predict_every_document(trainer: L.Trainer) -> None:
    """The final validation and test scores cover every document of their parts: a batch limit (a speed knob
    while developing; limit_val_batches also limits fit's validation, where it stays) would score a subset
    and record it as the result. Lightning's predict honours limit_predict_batches (and fast_dev_run's)."""
    limits = {name: getattr(trainer, name) for name in ("limit_predict_batches", "limit_val_batches",
                                                        "limit_test_batches")}
    partial = {name: value for name, value in limits.items() if not (isinstance(value, float) and value == 1.0)}
    if partial and not trainer.fast_dev_run:
        during = "; limit_val_batches still limits the validation during training" if "limit_val_batches" in partial else ""
        log.warning("the final validation and test scores cover every document: %s not applied to them%s",
                    ", ".join(f"trainer.{name}={value}" for name, value in partial.items()), during)
    trainer.limit_predict_batches = 1.0


def predictions(trainer: L.Trainer, module, dm: MultiLabelDataModule) -> tuple[Predictions, Predictions]:
    """Validation and test predictions of every document (under DDP: gathered from all ranks)."""
    predict_every_document(trainer)
    outputs = trainer.predict(module, dataloaders=dm.predict_dataloader())
    parts = []
    for part, batches in zip(("val", "test"), outputs):
        width = len(dm.label_names)
        probs = torch.cat([b["probs"] for b in batches]).cpu().double().numpy() if batches else np.zeros((0, width))
        docs = torch.cat([b["doc_index"] for b in batches]).cpu().numpy() if batches else np.zeros(0, dtype=np.int64)
        probs, docs = gather_by_document(probs, docs)
        expected = np.sort(np.asarray(getattr(dm.split, part)))
        if not np.array_equal(np.sort(docs), expected):  # not an assert: it must hold with python -O too
            raise RuntimeError(f"{len(docs)} {part} documents predicted, not the {len(expected)} of the {part} part; "
                               "its scores would not be the part's")
        parts.append(Predictions([dm.corpus.ids[d] for d in docs], probs, dm.labels[docs], dm.label_names))
    return parts[0], parts[1]


def predict_and_evaluate(trainer: L.Trainer, module, dm: MultiLabelDataModule, checkpoint, heads: list[list[int]],
                         threshold: str, load_best: bool = True) -> tuple[Predictions, Predictions, dict]:
    """Validation and test predictions of the best checkpoint's weights, and their evaluation."""
    best = checkpoint.best_model_path if checkpoint is not None else ""
    if load_best and best and Path(best).exists():
        module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    val, test = predictions(trainer, module, dm)
    return val, test, evaluate(val, test, heads, threshold)


def export(module, model_cfg, job: JobLayout, label_names: list[str], heads: list[list[int]], threshold) -> None:
    """Safetensors weights, tokenizer and what `mtlv.predict` needs to apply them (`model_cfg`: the `model`
    node, or its resolved dict)."""
    options = model_cfg["module"]
    export_model(module, load_tokenizer(model_cfg["name_or_path"]), job.export,
                 {"label_names": label_names, "groups": heads, "pooling": options["pooling"],
                  "max_length": int(model_cfg["max_length"]), "dropout": options["dropout"],
                  "head_hidden": options.get("head_hidden"),
                  "threshold": threshold, "encoder": str(model_cfg["name_or_path"])})


def copy_export(source: JobLayout, job: JobLayout, threshold) -> None:
    """The source's exported model, hard-linked where the file system allows (no second copy of the
    weights), with this job's chosen threshold in its metadata."""
    import shutil

    from mtlv.io import atomic_dir
    from mtlv.models.export import META

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:  # another file system, or links not allowed
            shutil.copy2(src, dst)

    with atomic_dir(job.export) as tmp:
        shutil.rmtree(tmp)
        shutil.copytree(source.export, tmp, copy_function=link)
        meta = read_json(tmp / META)
        (tmp / META).unlink()  # a new file, not the source's (hard-linked) one
        write_json(tmp / META, {**meta, "threshold": threshold})


def trainable_params(module: torch.nn.Module) -> int:
    """The parameters the optimizer updates (a frozen pooler or encoder does not count): the model's size
    as the report's cost table compares it across architectures."""
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


def job_tags(arch: str, dataset: str, cell: Cell, job: JobLayout, group_index: int | None) -> dict:
    """The job's MLflow tags; a group job of an STL/GMTL cell is a child of the cell's parent run."""
    tags = {"arch": arch, "dataset": dataset, "cell": cell.folder.name,
            "mtlv.job_dir": str(job.folder), "mtlv.cell_dir": str(cell.folder), "mtlv.role": "job"}
    if cell.placement == "models" and cell.layout.parent_run.exists():
        tags["mlflow.parentRunId"] = read_json(cell.layout.parent_run)["run_id"]
        tags["group_index"] = str(group_index)
    return tags


def spec_tags(spec: JobSpec) -> dict:
    return job_tags(spec.arch["name"], spec.data_name, spec.cell, spec.job, spec.group_index)


def job_result(spec: JobSpec, mkey: str, label_names: list[str], report: dict, elapsed: float, start: float,
               split: Split) -> dict:
    """What result.json holds for a finished job (trained or reused); written last, it marks the job done."""
    # dataset: the name its runs are logged under (`data_name`): `mtlv.track` logs with it where the data is absent
    return {"key": spec.job_key, "model_key": mkey, "run_name": spec.cell.run_name, "group_index": spec.group_index,
            "dataset": spec.data_name,
            "labels": label_names, "elapsed_s": elapsed, "start": start, "end": time.time(),
            "threshold": report["threshold"], "test": record.headline(report["test"]),
            "val": record.headline(report["val"]), "test_at_0.5": record.headline(report["test_at_0.5"]),
            "folder": str(spec.job.folder), **record.provenance(split),
            # what the job cost, for a study's estimates of later jobs on this machine (mtlv/run/cost.py)
            "work": cost.work_of(spec.config, split), "speed_key": cost.speed_key(spec.config, torch.get_num_threads()),
            "host": cost.host()}


@contextlib.contextmanager
def kept_if_server_gone(uri: str, job: JobLayout, cell: Cell, result: dict,
                        also: Callable[[], None] | None = None) -> Iterator[None]:
    """Logging a finished job's result to a tracking server that stops answering: the result stands (result.json
    written, then `also`), and the error is one line saying so and how `mtlv.track` records it later. The job's
    run is left incomplete: without its mlflow_run.json, mtlv.track marks it KILLED and logs the job anew."""
    try:
        yield
    except Exception as err:
        if not tracking.server_gone(uri, err):
            raise
        job.mlflow_run.unlink(missing_ok=True)
        write_json(job.result_json, result)
        if also is not None:
            also()
        raise tracking.outage_error(uri, err, "logging the job's result", job.folder, cell.folder) from None


def record_job(spec: JobSpec, logger, grouping: TaskGrouping, split: Split, report: dict, result: dict,
               trained: str | None = None, reused_from: str | None = None) -> dict:
    """The end of every job, trained or reused: its MLflow run (params, metrics, artifacts; a reused model's
    run names its source and is ended here), result.json, the model registry (`trained`: the model key of a
    model trained here), the console summary."""
    job = spec.job
    also = (lambda: register(spec.registry, trained, job)) if trained else None
    if logger is not None:
        uri = spec.tracking.uri
        with kept_if_server_gone(uri, job, spec.cell, result, also):
            record.log_job(spec.used, uri, logger.run_id, spec.cell.layout, job, grouping, report,
                           float(result["elapsed_s"]), record.split_info(split), record.environment_params(),
                           trainable_params=result.get("trainable_params"))
            if reused_from is not None:
                tracking.log_to_run(uri, logger.run_id, params={"reused_from": reused_from})
                tracking.end_run(uri, logger.run_id)
        result["run_id"] = logger.run_id
    write_json(job.result_json, result)
    if also is not None:
        also()  # after result.json: the registry only names finished jobs
    record.print_job(result, report)
    return result


def record_failure(spec: JobSpec | None, err: BaseException) -> None:
    """The error of a job that failed after its folder was made, as its failed.json (a study shows it at once;
    the next attempt removes it). Nothing when the job's folder is not known (bad data or options: no spec)."""
    from mtlv.errors import user_error

    if spec is not None and spec.job is not None and spec.job.exists():
        shown = user_error(err) or err
        write_json(spec.job.failed_json, {"error": f"{type(shown).__name__}: {shown}", "time": time.time()})
