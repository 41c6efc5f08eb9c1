"""One training job: the model for the groups a job owns (all groups for MTL/GMHL, one for STL/GMTL).

`run_job` runs the steps below in order: resolve the job (its `JobSpec`: checks, keys, folders) -> prepare
the job folder (split, grouping) -> build the data module, the module and the trainer from the config's
nodes (mtlv/run/nodes.py) -> fit (resumable) -> predict val/test and evaluate -> record (files, MLflow,
console: mtlv/run/outcome.py). `result.json` is written last: it marks the job finished. Below `run_job`,
the steps receive the spec or the objects they need; `cfg` only reaches the nodes it instantiates.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from mtlv.data.corpus import Corpus
from mtlv.data.datamodule import MultiLabelDataModule
from mtlv.data.load import load_corpus
from mtlv.data.splits import Split, label_count_table, load_or_make_split
from mtlv.evaluation.evaluate import evaluate
from mtlv.evaluation.predictions import Predictions
from mtlv.grouping.partition import TaskGrouping
from mtlv.io import read_json, write_text
from mtlv.layout import JobLayout
from mtlv.run import record
from mtlv.run.cell import cell_grouping, finished_result
from mtlv.run.checkpoint import clear_stale_checkpoints, verify_checkpoint
from mtlv.run.lock import job_lock
from mtlv.run.nodes import build_datamodule, build_module, build_trainer, configure_torch, make_logger, quiet_libraries
from mtlv.run.outcome import (copy_export, export, job_result, predict_and_evaluate, record_job, spec_tags,
                              trainable_params)
from mtlv.run.reuse import trained_source
from mtlv.run.spec import JobSpec
from mtlv.run.stop import StopJob, die_with_sweeper

log = logging.getLogger(__name__)


def prepare_folder(spec: JobSpec, corpus: Corpus, grouping: TaskGrouping) -> Split:
    """The job folder with the split's label counts, the resolved config and the grouping; the split."""
    job = spec.job
    job.mkdir()
    split = load_or_make_split(corpus, spec.cache_dir, seed=spec.seed, **spec.split)
    counts = label_count_table(corpus, split)
    log.info("documents and positives per label:\n%s", counts.to_string())
    record.warn_constant_labels(counts)
    write_text(job.label_counts, counts.to_csv())
    write_text(job.config_yaml, spec.config_yaml)
    grouping.save(job.groups_yaml)
    return split


def fit(trainer: L.Trainer, module, dm: MultiLabelDataModule, job: JobLayout, resume: bool) -> None:
    """Train, from the job's last checkpoint when `resume` and there is one (a fresh start clears stale ones)."""
    last = job.last_checkpoint
    resume_from = str(last) if resume and last.exists() else None
    if resume_from:
        verify_checkpoint(last)
        log.info("resuming from %s", resume_from)
    else:
        clear_stale_checkpoints(job.checkpoints)
    if StopJob.active is not None:
        StopJob.active.watch(last)
    trainer.fit(module, datamodule=dm, ckpt_path=resume_from, weights_only=True)


def run_job(cfg: DictConfig, spec: JobSpec | None = None) -> dict:
    """The job of `cfg`. `spec`: its JobSpec when the entry resolved it (else resolved here: the checks run
    once, in `JobSpec.resolve`); `cfg` is only read to instantiate the data, model, trainer, callback and
    logger nodes."""
    quiet_libraries()
    spec = spec or JobSpec.resolve(cfg)
    configure_torch(spec.launch)
    die_with_sweeper()
    corpus = load_corpus(cfg)  # read (and checked) by JobSpec.resolve: from this process' cache
    grouping = cell_grouping(spec, corpus)
    with job_lock(spec.job):  # a second command on this job waits here, then finds it finished
        return train_job(cfg, spec, corpus, grouping)


def train_job(cfg: DictConfig, spec: JobSpec, corpus: Corpus, grouping: TaskGrouping) -> dict:
    """The job's saved result when it finished before; else its model trained (or reused) and recorded."""
    job = spec.job
    cols, heads = grouping.job_labels(spec.group_index)
    job.failed_json.unlink(missing_ok=True)  # this attempt's outcome replaces an earlier failure's
    if (result := finished_result(spec)) is not None:
        record.print_job(result, job.metrics(), rerun=True)
        return result
    label_names = [corpus.label_names[j] for j in cols]
    mkey = spec.model_key(label_names, heads)
    if spec.reuses and (source := trained_source(spec.registry, mkey, job, spec.save_weights)) is not None:
        return reuse_job(cfg.get("logger"), spec, corpus, grouping, mkey, source, label_names, heads)
    if job.result_json.exists() and "reused_from" in read_json(job.result_json):
        job.mlflow_run.unlink(missing_ok=True)  # now trained here: a run of its own, not the reused result's
    L.seed_everything(spec.seed, workers=True)
    start = time.time()
    split = prepare_folder(spec, corpus, grouping)
    name = record.job_run_name(spec.cell.run_name, spec.group_index, label_names)
    logger, _ = make_logger(cfg.get("logger"), spec, name, spec_tags(spec))

    dm = build_datamodule(cfg.data, cfg.model, corpus, split, cols, spec.cache_dir, spec.seed)
    module = build_module(cfg.model.module, heads, label_names)
    trainer, checkpoint = build_trainer(cfg.trainer, cfg.get("callbacks"), job, logger, spec.launch.gpu)
    fit(trainer, module, dm, job, spec.resume)
    val, test, report = predict_and_evaluate(trainer, module, dm, checkpoint, heads, spec.threshold,
                                             load_best=not trainer.fast_dev_run)
    elapsed = time.time() - start
    if not trainer.is_global_zero:  # DDP: every rank has the gathered predictions; rank 0 writes them
        return {"key": spec.job_key, "test": record.headline(report["test"]), "folder": str(job.folder),
                "rank": trainer.global_rank}
    record.save_evaluation(job, val, test, report, plot_title=f"{spec.cell.run_name}: test F1 per label")
    if spec.save_weights:
        export(module, spec.config["model"], job, label_names, heads, report["threshold"])
    result = {**job_result(spec, mkey, label_names, report, elapsed, start, split),
              "trainable_params": trainable_params(module)}
    return record_job(spec, logger, grouping, split, report, result, trained=mkey)


def reuse_job(logger_cfg: DictConfig | None, spec: JobSpec, corpus: Corpus, grouping: TaskGrouping, mkey: str,
              source: JobLayout, label_names: list[str], heads: list[list[int]]) -> dict:
    """The job's result from the model another job already trained (same model key): its folder is
    prepared and its predictions evaluated, recorded and logged as if it had trained; no training.
    `logger_cfg`: the `logger` node (None: no MLflow)."""
    job = spec.job
    start = time.time()
    split = prepare_folder(spec, corpus, grouping)
    origin = str(source.folder.resolve().relative_to(Path(spec.runs_dir).resolve()))
    val, test = Predictions.load(source.predictions("val")), Predictions.load(source.predictions("test"))
    report = evaluate(val, test, heads, spec.threshold)
    record.save_evaluation(job, val, test, report, plot_title=f"{spec.cell.run_name}: test F1 per label")
    if spec.save_weights:
        copy_export(source, job, report["threshold"])
    trained = source.result()
    what = f"group {spec.group_index} " if spec.group_index is not None else ""
    print(f"{what}({', '.join(label_names[:6])}{', ...' if len(label_names) > 6 else ''}): reused the model "
          f"trained in {origin} (same labels, data, split and training options); not retrained. "
          "reuse_models=false retrains it.", flush=True)
    # elapsed_s and trainable_params are the model's training cost (the source job's), so summed job times
    # and parameter counts stay comparable between cells that trained and cells that reused.
    result = {**job_result(spec, mkey, label_names, report, trained["elapsed_s"], start, split),
              "reused_from": origin}
    if trained.get("trainable_params") is not None:  # a source trained before it was recorded: none
        result["trainable_params"] = trained["trainable_params"]
    logger, _ = make_logger(logger_cfg, spec, record.job_run_name(spec.cell.run_name, spec.group_index, label_names),
                            {**spec_tags(spec), "mtlv.reused_from": origin})
    return record_job(spec, logger, grouping, split, report, result, reused_from=origin)
