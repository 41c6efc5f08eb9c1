"""One training job: the model for the groups a job owns (all groups for MTL/GMHL, one for STL/GMTL).

`run_job` runs the steps below in order: load the data -> prepare the job folder (split, grouping)
-> build the data module, the module and the trainer (from `_target_`) -> fit (resumable) ->
predict val/test and evaluate -> record (files, MLflow, console). `result.json` is written last:
it marks the job finished. The steps receive the objects they need, not the whole config.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator

import lightning as L
import numpy as np
import torch
import transformers
from lightning.fabric.plugins.environments import SLURMEnvironment
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mtlv import launch, tracking
from mtlv.checks import check_config, check_options
from mtlv.data.corpus import Corpus
from mtlv.data.datamodule import MultiLabelDataModule
from mtlv.data.splits import Split, label_count_table, load_or_make_split
from mtlv.evaluation.evaluate import evaluate
from mtlv.evaluation.predictions import Predictions
from mtlv.grouping.partition import TaskGrouping
from mtlv.io import read_json, write_json, write_text
from mtlv.models.encoder import load_tokenizer
from mtlv.models.export import export_model
from mtlv.run import cost, record
from mtlv.run.cell import Cell, cell_grouping, finished_result, job_key, open_cell
from mtlv.data.load import data_name, experiment_name, load_corpus
from mtlv.run.checkpoint import AtomicCheckpointIO, clear_stale_checkpoints, verify_checkpoint
from mtlv.run.distributed import gather_by_document
from mtlv.layout import JobLayout
from mtlv.run.lock import job_lock
from mtlv.run.preempt import PreemptionCheckpoint
from mtlv.run.progress import progress_switch
from mtlv.run.reuse import model_key, register, trained_source
from mtlv.run.stop import StopJob, die_with_sweeper, under_slurm

log = logging.getLogger(__name__)


ADVERTS = ("litlogger", "litmodels", "\N{ELECTRIC LIGHT BULB} Tip")  # Lightning's "try our product" lines


def _no_advert(record: logging.LogRecord) -> bool:
    return not any(advert in str(record.msg) for advert in ADVERTS)


def quiet_libraries() -> None:
    """One line per message: `import lightning` gives its own loggers console handlers besides
    Hydra's root handler (each INFO line came twice); no "try litlogger/litmodels" advertisement; no
    hint to use `srun` on every machine that merely has SLURM installed (MTLV's SLURM jobs are
    started by the submitit launcher, not srun); no progress bar per weight-loading."""
    if logging.getLogger().handlers:
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _no_advert not in rank_zero.filters:
        rank_zero.addFilter(_no_advert)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*litlogger.*")
    warnings.filterwarnings("ignore", message=r".*The `srun` command is available on your system.*")
    transformers.utils.logging.disable_progress_bar()


def configure_torch(cfg: DictConfig) -> None:
    threads = cfg.get("torch_threads")
    if not threads:
        from hydra.core.hydra_config import HydraConfig

        launcher = HydraConfig.get().launcher if HydraConfig.initialized() else None
        cores = launch.cores()
        if threads := launch.default_threads(launcher, os.environ, cores):
            log.info("torch uses %d CPU thread(s) (torch_threads unset; %d cores, parallel jobs or SLURM's share)",
                     threads, cores)
    if threads:
        torch.set_num_threads(int(threads))
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def trainer_overrides(cfg: DictConfig) -> dict:
    """Pin job i of a sweep to GPU i mod #GPUs, so parallel jobs on one machine do not share a GPU."""
    gpus = torch.cuda.device_count()
    if not (cfg.pin_gpu_per_job and gpus > 1 and cfg.trainer.devices == 1 and cfg.group_index is not None):
        return {}
    from hydra.core.hydra_config import HydraConfig

    num = HydraConfig.get().job.num if HydraConfig.initialized() else int(cfg.group_index)
    return {"devices": [int(num) % gpus]}


def make_logger(cfg: DictConfig, job: JobLayout, run_name: str, tags: dict) -> tuple[object | None, str | None]:
    if cfg.get("logger") is None:
        return None, None
    uri = tracking.resolve_uri(cfg.tracking.uri, cfg.tracking.fallback_uri)
    experiment = experiment_name(cfg)
    exp = tracking.experiment_id(uri, experiment, cfg.tracking.artifact_location)
    saved = job.mlflow_run
    run_id = read_json(saved)["run_id"] if saved.exists() and cfg.resume else None
    tracking.end_orphans(uri, exp, {"mtlv.job_dir": str(job.folder), "mtlv.role": "job"}, keep=run_id)
    where = {"artifact_location": None} if tracking.is_server(uri) else {}  # a server decides where artifacts go
    logger = instantiate(cfg.logger, experiment_name=experiment, tracking_uri=tracking.with_busy_timeout(uri),
                         run_name=run_name, tags=tags, run_id=run_id, **where)
    write_json(saved, {"run_id": logger.run_id, "tracking_uri": uri})
    return logger, uri


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


def load_data(cfg: DictConfig) -> Corpus:
    """The corpus (cached in this process), checked against the options that depend on it."""
    corpus = load_corpus(cfg)
    check_config(cfg, corpus.num_labels)
    return corpus


def prepare_folder(cfg: DictConfig, corpus: Corpus, grouping: TaskGrouping, job: JobLayout) -> Split:
    """The job folder with the split's label counts, the resolved config and the grouping; the split."""
    job.mkdir()
    split = load_or_make_split(corpus, cfg.paths.cache_dir, seed=int(cfg.seed), **cfg.split)
    counts = label_count_table(corpus, split)
    log.info("documents and positives per label:\n%s", counts.to_string())
    record.warn_constant_labels(counts)
    write_text(job.label_counts, counts.to_csv())
    write_text(job.config_yaml, OmegaConf.to_yaml(cfg, resolve=True))
    grouping.save(job.groups_yaml)
    return split


def job_tags(cfg: DictConfig, cell: Cell, job: JobLayout) -> dict:
    """The job's MLflow tags; a group job of an STL/GMTL cell is a child of the cell's parent run."""
    tags = {"arch": cfg.arch.name, "dataset": data_name(cfg), "cell": cell.folder.name,
            "mtlv.job_dir": str(job.folder), "mtlv.cell_dir": str(cell.folder), "mtlv.role": "job"}
    if cfg.arch.placement == "models" and cell.layout.parent_run.exists():
        tags["mlflow.parentRunId"] = read_json(cell.layout.parent_run)["run_id"]
        tags["group_index"] = str(cfg.group_index)
    return tags


def build_datamodule(data_cfg: DictConfig, model_cfg: DictConfig, corpus: Corpus, split: Split, cols: list[int],
                     cache_dir: str, seed: int) -> L.LightningDataModule:
    """The `data` node's DataModule (`_target_`, with data.batch_size etc.) for this job's label columns
    `cols`, tokenized for the model's encoder. (A partial first: the corpus and split are dataclasses,
    which Hydra would turn into configs if they were passed to `instantiate` itself.)"""
    make = instantiate(data_cfg, _partial_=True)
    return make(corpus, split, model_cfg.name_or_path, int(model_cfg.max_length), label_indices=cols,
                cache_dir=cache_dir, seed=seed, trust_remote_code=bool(model_cfg.trust_remote_code))


def build_module(module_cfg: DictConfig, heads: list[list[int]], label_names: list[str]):
    return instantiate(module_cfg, groups=heads, label_names=label_names, _convert_="all")


def build_trainer(cfg: DictConfig, job: JobLayout, logger) -> tuple[L.Trainer, object | None]:
    """The trainer with the configured callbacks, checkpoints in the job folder, and the pre-emption
    checkpoint; the model checkpoint callback (None without one)."""
    callbacks = {name: instantiate(c) for name, c in (cfg.get("callbacks") or {}).items() if c}
    extra = trainer_overrides(cfg)
    callbacks, extra["enable_progress_bar"] = progress_switch(callbacks, cfg.trainer.get("enable_progress_bar", True))
    checkpoint = callbacks.get("model_checkpoint")
    if checkpoint is not None:
        checkpoint.dirpath = str(job.checkpoints)
    # SIGUSR1, SLURM's SIGTERM, a plain job's SIGTERM (mtlv/run/stop.py): save at a batch boundary, exit
    callbacks["preemption"] = PreemptionCheckpoint(job.last_checkpoint, sigterm=StopJob.active is not None)
    if checkpoint is None and cfg.trainer.get("enable_checkpointing") is None:
        # Without MTLV's checkpoint callback Lightning adds its own default one, which writes a full
        # checkpoint (MiniLM with AdamW state: ~270 MB) per job under the working folder that nothing reads.
        extra["enable_checkpointing"] = False
    if not cfg.trainer.get("plugins"):  # checkpoints written atomically, loaded weights-only
        extra["plugins"] = [AtomicCheckpointIO()]
        if under_slurm():  # pre-emption is PreemptionCheckpoint's job, not Lightning's handler
            extra["plugins"].append(SLURMEnvironment(auto_requeue=False))
    trainer = instantiate(cfg.trainer, callbacks=list(callbacks.values()), logger=logger or False, **extra)
    return trainer, checkpoint


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


def predict_and_evaluate(trainer: L.Trainer, module, dm: MultiLabelDataModule, checkpoint, heads: list[list[int]],
                         threshold: str, load_best: bool = True) -> tuple[Predictions, Predictions, dict]:
    """Validation and test predictions of the best checkpoint's weights, and their evaluation."""
    best = checkpoint.best_model_path if checkpoint is not None else ""
    if load_best and best and Path(best).exists():
        module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    val, test = predictions(trainer, module, dm)
    return val, test, evaluate(val, test, heads, threshold)


def export(module, model_cfg: DictConfig, job: JobLayout, label_names: list[str], heads: list[list[int]],
           threshold) -> None:
    """Safetensors weights, tokenizer and what `mtlv.predict` needs to apply them."""
    export_model(module, load_tokenizer(model_cfg.name_or_path), job.export,
                 {"label_names": label_names, "groups": heads, "pooling": model_cfg.module.pooling,
                  "max_length": int(model_cfg.max_length), "dropout": model_cfg.module.dropout,
                  "head_hidden": model_cfg.module.get("head_hidden"),
                  "threshold": threshold, "encoder": str(model_cfg.name_or_path)})


def trainable_params(module: torch.nn.Module) -> int:
    """The parameters the optimizer updates (a frozen pooler or encoder does not count): the model's size
    as the report's cost table compares it across architectures."""
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


def run_job(cfg: DictConfig) -> dict:
    quiet_libraries()
    check_options(cfg)
    configure_torch(cfg)
    die_with_sweeper()
    corpus = load_data(cfg)
    cell = open_cell(cfg)
    grouping = cell_grouping(cfg, corpus, cell)
    job = cell.job(cfg.group_index)
    with job_lock(job):  # a second command on this job waits here, then finds it finished
        return train_job(cfg, corpus, cell, grouping, job)


def train_job(cfg: DictConfig, corpus: Corpus, cell: Cell, grouping: TaskGrouping, job: JobLayout) -> dict:
    """The job's saved result when it finished before; else its model trained (or reused) and recorded."""
    cols, heads = grouping.job_labels(cfg.group_index)
    key = job_key(cfg)
    job.failed_json.unlink(missing_ok=True)  # this attempt's outcome replaces an earlier failure's
    if (result := finished_result(cfg, job, key)) is not None:
        record.print_job(result, job.metrics(), rerun=True)
        return result
    label_names = [corpus.label_names[j] for j in cols]
    mkey = model_key(cfg, label_names, heads)
    if (source := trained_source(cfg, mkey, job, bool(cfg.eval.save_weights))) is not None:
        return reuse_job(cfg, corpus, cell, grouping, job, key, mkey, source, label_names, heads)
    if job.result_json.exists() and "reused_from" in read_json(job.result_json):
        job.mlflow_run.unlink(missing_ok=True)  # now trained here: a run of its own, not the reused result's
    L.seed_everything(int(cfg.seed), workers=True)
    start = time.time()
    split = prepare_folder(cfg, corpus, grouping, job)
    name = record.job_run_name(cell.run_name, cfg.group_index, label_names)
    logger, uri = make_logger(cfg, job, name, job_tags(cfg, cell, job))

    dm = build_datamodule(cfg.data, cfg.model, corpus, split, cols, cfg.paths.cache_dir, int(cfg.seed))
    module = build_module(cfg.model.module, heads, label_names)
    trainer, checkpoint = build_trainer(cfg, job, logger)
    fit(trainer, module, dm, job, bool(cfg.resume))
    val, test, report = predict_and_evaluate(trainer, module, dm, checkpoint, heads, cfg.eval.threshold,
                                             load_best=not cfg.trainer.fast_dev_run)
    elapsed = time.time() - start
    if not trainer.is_global_zero:  # DDP: every rank has the gathered predictions; rank 0 writes them
        return {"key": key, "test": record.headline(report["test"]), "folder": str(job.folder),
                "rank": trainer.global_rank}
    record.save_evaluation(job, val, test, report, plot_title=f"{cell.run_name}: test F1 per label")
    if cfg.eval.save_weights:
        export(module, cfg.model, job, label_names, heads, report["threshold"])

    result = {**job_result(cfg, cell, job, key, mkey, label_names, report, elapsed, start, split),
              "trainable_params": trainable_params(module)}
    if logger is not None:
        with kept_if_server_gone(uri, job, cell, result, lambda: register(cfg, mkey, job)):
            log_job(cfg, uri, logger.run_id, cell, job, grouping, report, elapsed, split, result["trainable_params"])
        result["run_id"] = logger.run_id
    write_json(job.result_json, result)
    register(cfg, mkey, job)  # after result.json: the registry only names finished jobs
    record.print_job(result, report)
    return result


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


def record_failure(cfg: DictConfig, err: BaseException) -> None:
    """The error of a job that failed after its folder was made, as its failed.json (a study shows it at once;
    the next attempt removes it). Nothing when the job's folder is not known (bad data or options)."""
    from mtlv.errors import user_error
    from mtlv.run.cell import job_dir

    try:
        folder = JobLayout(job_dir(cfg))
    except Exception:  # noqa: BLE001 - the failure itself is reported by the caller
        return
    if folder.exists():
        shown = user_error(err) or err
        write_json(folder.failed_json, {"error": f"{type(shown).__name__}: {shown}", "time": time.time()})


def job_result(cfg: DictConfig, cell: Cell, job: JobLayout, key: str, mkey: str, label_names: list[str],
               report: dict, elapsed: float, start: float, split: Split) -> dict:
    """What result.json holds for a finished job (trained or reused); written last, it marks the job done."""
    # dataset: the name its runs are logged under (`data_name`): `mtlv.track` logs with it where the data is absent
    return {"key": key, "model_key": mkey, "run_name": cell.run_name, "group_index": cfg.group_index,
            "dataset": data_name(cfg),
            "labels": label_names, "elapsed_s": elapsed, "start": start, "end": time.time(),
            "threshold": report["threshold"], "test": record.headline(report["test"]),
            "val": record.headline(report["val"]), "test_at_0.5": record.headline(report["test_at_0.5"]),
            "folder": str(job.folder), **record.provenance(split),
            # what the job cost, for a study's estimates of later jobs on this machine (mtlv/run/cost.py)
            "work": cost.work_of(cfg, split), "speed_key": cost.speed_key(cfg, torch.get_num_threads()),
            "host": cost.host()}


def reuse_job(cfg: DictConfig, corpus: Corpus, cell: Cell, grouping: TaskGrouping, job: JobLayout, key: str,
              mkey: str, source: JobLayout, label_names: list[str], heads: list[list[int]]) -> dict:
    """The job's result from the model another job already trained (same model key): its folder is
    prepared and its predictions evaluated, recorded and logged as if it had trained; no training."""
    start = time.time()
    split = prepare_folder(cfg, corpus, grouping, job)
    runs_dir = Path(cfg.paths.runs_dir).resolve()
    origin = str(source.folder.resolve().relative_to(runs_dir))
    val, test = Predictions.load(source.predictions("val")), Predictions.load(source.predictions("test"))
    report = evaluate(val, test, heads, cfg.eval.threshold)
    record.save_evaluation(job, val, test, report, plot_title=f"{cell.run_name}: test F1 per label")
    if cfg.eval.save_weights:
        copy_export(source, job, report["threshold"])
    trained = source.result()
    what = f"group {cfg.group_index} " if cfg.group_index is not None else ""
    print(f"{what}({', '.join(label_names[:6])}{', ...' if len(label_names) > 6 else ''}): reused the model "
          f"trained in {origin} (same labels, data, split and training options); not retrained. "
          "reuse_models=false retrains it.", flush=True)
    # elapsed_s and trainable_params are the model's training cost (the source job's), so summed job times
    # and parameter counts stay comparable between cells that trained and cells that reused.
    result = {**job_result(cfg, cell, job, key, mkey, label_names, report, trained["elapsed_s"], start, split),
              "reused_from": origin}
    if trained.get("trainable_params") is not None:  # a source trained before it was recorded: none
        result["trainable_params"] = trained["trainable_params"]
    logger, uri = make_logger(cfg, job, record.job_run_name(cell.run_name, cfg.group_index, label_names),
                              {**job_tags(cfg, cell, job), "mtlv.reused_from": origin})
    if logger is not None:
        with kept_if_server_gone(uri, job, cell, result):
            log_job(cfg, uri, logger.run_id, cell, job, grouping, report, float(trained["elapsed_s"]), split,
                    result.get("trainable_params"))
            tracking.log_to_run(uri, logger.run_id, params={"reused_from": origin})
            tracking.end_run(uri, logger.run_id)
        result["run_id"] = logger.run_id
    write_json(job.result_json, result)
    record.print_job(result, report)
    return result


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


def log_job(cfg: DictConfig, uri: str, run_id: str, cell: Cell, job: JobLayout, grouping: TaskGrouping,
            report: dict, elapsed: float, split: Split, params: int | None) -> None:
    record.log_job(cfg, uri, run_id, cell.layout, job, grouping, report, elapsed, record.split_info(split),
                   record.environment_params(), trainable_params=params)
