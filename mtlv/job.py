"""One training job: the model for the groups a job owns (all groups for MTL/GMHL, one for STL/GMTL).

Steps: corpus -> grouping -> split -> data -> fit (resumable) -> predict val/test -> evaluate ->
files in the job folder -> MLflow. `result.json` is written last: it marks the job finished.
"""
from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mtlv import summary, tracking
from mtlv.cell import cell_dir, cell_grouping, data_fingerprint, grouping_params, job_dir, load_corpus, run_name
from mtlv.checkpoint import (AtomicCheckpointIO, PreemptionCheckpoint, clear_stale_checkpoints, under_slurm,
                             verify_checkpoint)
from mtlv.checks import check_config, check_options
from mtlv.config import flatten, identity, to_container
from mtlv.data.datamodule import MultiLabelDataModule
from mtlv.data.splits import label_count_table, load_or_make_split
from mtlv.distributed import gather_by_document
from mtlv.evaluation.evaluate import evaluate
from mtlv.evaluation.metrics import flat_metrics
from mtlv.evaluation.plots import plot_per_label_f1
from mtlv.evaluation.predictions import Predictions
from mtlv.evaluation.report import classification_report
from mtlv.io import read_json, stable_hash, write_json, write_text
from mtlv.models.encoder import load_tokenizer
from mtlv.models.export import export_model

log = logging.getLogger(__name__)


def job_key(cfg: DictConfig) -> str:
    return stable_hash([identity(cfg), cfg.get("group_index"), data_fingerprint(cfg)])


def finished_result(cfg: DictConfig, out: Path) -> dict | None:
    done = out / "result.json"
    if cfg.resume and done.exists():
        result = read_json(done)
        if result.get("key") == job_key(cfg):
            return result
    return None


def _no_advert(record: logging.LogRecord) -> bool:
    return "litlogger" not in str(record.msg)


def quiet_libraries() -> None:
    """One line per message: `import lightning` gives its own loggers console handlers besides
    Hydra's root handler (each INFO line came twice); and no "try litlogger" advertisement."""
    if logging.getLogger().handlers:
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _no_advert not in rank_zero.filters:
        rank_zero.addFilter(_no_advert)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*litlogger.*")


def default_threads(launcher, env, cores: int) -> int | None:
    """torch_threads when unset: the CPUs SLURM gave the job, or the cores shared among the joblib
    launcher's parallel jobs (each torch would otherwise use every core); None: torch's default."""
    if str(env.get("SLURM_CPUS_PER_TASK", "")).isdigit():
        return int(env["SLURM_CPUS_PER_TASK"])
    if launcher is not None and "joblib" in str(launcher.get("_target_", "")):
        n_jobs = int(launcher.get("n_jobs") or 1)
        workers = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)  # joblib: -1 = all cores
        return max(1, cores // workers)
    return None


def configure_torch(cfg: DictConfig) -> None:
    threads = cfg.get("torch_threads")
    if not threads:
        from hydra.core.hydra_config import HydraConfig

        launcher = HydraConfig.get().launcher if HydraConfig.initialized() else None
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        if threads := default_threads(launcher, os.environ, cores):
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


def make_logger(cfg: DictConfig, out: Path, tags: dict) -> tuple[object | None, str | None]:
    if cfg.get("logger") is None:
        return None, None
    uri = tracking.resolve_uri(cfg.tracking.uri, cfg.tracking.fallback_uri)
    exp = tracking.experiment_id(uri, cfg.logger.experiment_name, cfg.tracking.artifact_location)
    saved = out / "mlflow_run.json"
    run_id = read_json(saved)["run_id"] if saved.exists() and cfg.resume else None
    tracking.end_orphans(uri, exp, {"mtlv.job_dir": str(out), "mtlv.role": "job"}, keep=run_id)
    logger = instantiate(cfg.logger, tracking_uri=tracking.with_busy_timeout(uri), run_name=run_name(cfg),
                         tags=tags, run_id=run_id)
    write_json(saved, {"run_id": logger.run_id, "tracking_uri": uri})
    return logger, uri


def predictions(trainer: L.Trainer, module, dm: MultiLabelDataModule) -> tuple[Predictions, Predictions]:
    """Validation and test predictions of every document (under DDP: gathered from all ranks)."""
    outputs = trainer.predict(module, dataloaders=dm.predict_dataloader())
    parts = []
    for part, batches in zip(("val", "test"), outputs):
        width = len(dm.label_names)
        probs = torch.cat([b["probs"] for b in batches]).cpu().double().numpy() if batches else np.zeros((0, width))
        docs = torch.cat([b["doc_index"] for b in batches]).cpu().numpy() if batches else np.zeros(0, dtype=np.int64)
        probs, docs = gather_by_document(probs, docs)
        parts.append(Predictions([dm.corpus.ids[d] for d in docs], probs, dm.labels[docs], dm.label_names))
    return parts[0], parts[1]


def run_job(cfg: DictConfig) -> dict:
    quiet_libraries()
    check_options(cfg)
    configure_torch(cfg)
    corpus = load_corpus(cfg)
    check_config(cfg, corpus.num_labels)
    grouping = cell_grouping(cfg, corpus)
    cols, heads = grouping.job_labels(cfg.group_index)
    out = job_dir(cfg)
    if (result := finished_result(cfg, out)) is not None:
        print_summary(result, read_json(out / "metrics.json"), rerun=True)
        return result
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(int(cfg.seed), workers=True)
    start = time.time()

    split = load_or_make_split(corpus, cfg.paths.cache_dir, seed=int(cfg.seed), **cfg.split)
    counts = label_count_table(corpus, split)
    log.info("documents and positives per label:\n%s", counts.to_string())
    write_text(out / "label_counts.csv", counts.to_csv())
    write_text(out / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    grouping.save(out / "groups.yaml")

    label_names = [corpus.label_names[j] for j in cols]
    tags = {"arch": cfg.arch.name, "dataset": cfg.dataset.name, "cell": cell_dir(cfg).name,
            "mtlv.job_dir": str(out), "mtlv.cell_dir": str(cell_dir(cfg)), "mtlv.role": "job"}
    parent = cell_dir(cfg) / "parent_run.json"
    if cfg.arch.placement == "models" and parent.exists():
        tags["mlflow.parentRunId"] = read_json(parent)["run_id"]
        tags["group_index"] = str(cfg.group_index)
    logger, uri = make_logger(cfg, out, tags)

    dm = MultiLabelDataModule(corpus, split, cfg.model.name_or_path, int(cfg.model.max_length),
                              label_indices=cols, cache_dir=cfg.paths.cache_dir, seed=int(cfg.seed),
                              trust_remote_code=bool(cfg.model.trust_remote_code), **cfg.data)
    module = instantiate(cfg.model.module, groups=heads, label_names=label_names, _convert_="all")
    callbacks = {name: instantiate(c) for name, c in (cfg.get("callbacks") or {}).items() if c}
    checkpoint = callbacks.get("model_checkpoint")
    if checkpoint is not None:
        checkpoint.dirpath = str(out / "checkpoints")
    last = out / "checkpoints" / "last.ckpt"
    callbacks["preemption"] = PreemptionCheckpoint(last)  # SIGUSR1/SLURM's SIGTERM: save last.ckpt, exit
    extra = trainer_overrides(cfg)
    if not cfg.trainer.get("plugins"):  # checkpoints written atomically, loaded weights-only
        extra["plugins"] = [AtomicCheckpointIO()]
        if under_slurm():  # pre-emption is PreemptionCheckpoint's job, not Lightning's handler
            extra["plugins"].append(SLURMEnvironment(auto_requeue=False))
    trainer = instantiate(cfg.trainer, callbacks=list(callbacks.values()), logger=logger or False, **extra)
    resume_from = str(last) if cfg.resume and last.exists() else None
    if resume_from:
        verify_checkpoint(last)
        log.info("resuming from %s", resume_from)
    else:
        clear_stale_checkpoints(out / "checkpoints")
    trainer.fit(module, datamodule=dm, ckpt_path=resume_from, weights_only=True)

    best = checkpoint.best_model_path if checkpoint is not None else ""
    if best and Path(best).exists() and not cfg.trainer.fast_dev_run:
        module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    val, test = predictions(trainer, module, dm)
    report = evaluate(val, test, heads, cfg.eval.threshold)
    elapsed = time.time() - start
    if not trainer.is_global_zero:  # DDP: every rank has the gathered predictions; rank 0 writes them
        return {"key": job_key(cfg), "test": strip(report["test"]), "folder": str(out), "rank": trainer.global_rank}
    val.save(out / "predictions_val.csv")
    test.save(out / "predictions_test.csv")
    write_text(out / "classification_report.csv", classification_report(report["test"]).to_csv(index=False))
    write_json(out / "metrics.json", report)
    plot_per_label_f1(report["test"], out / "per_label_f1.png", title=f"{run_name(cfg)}: test F1 per label")
    if cfg.eval.save_weights:
        export_model(module, load_tokenizer(cfg.model.name_or_path), out / "export",
                     {"label_names": label_names, "groups": heads, "pooling": cfg.model.module.pooling,
                      "max_length": int(cfg.model.max_length), "dropout": cfg.model.module.dropout,
                      "head_hidden": cfg.model.module.get("head_hidden"),
                      "threshold": report["threshold"], "encoder": str(cfg.model.name_or_path)})

    result = {"key": job_key(cfg), "run_name": run_name(cfg), "group_index": cfg.group_index,
              "labels": label_names, "elapsed_s": elapsed, "start": start, "end": time.time(),
              "threshold": report["threshold"], "test": strip(report["test"]), "val": strip(report["val"]),
              "test_at_0.5": strip(report["test_at_0.5"]), "folder": str(out)}
    if logger is not None:
        log_job(cfg, uri, logger.run_id, grouping, report, out, elapsed, split.path, split.sizes())
        result["run_id"] = logger.run_id
    write_json(out / "result.json", result)
    print_summary(result, report)
    return result


def strip(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("f1_macro", "f1_micro", "subset_accuracy", "n_undefined")}


def log_job(cfg: DictConfig, uri: str, run_id: str, grouping, report: dict, out: Path, elapsed: float,
            split_file: Path | None, split_sizes: dict) -> None:
    params = flatten(to_container(cfg))
    params.update({f"group.{i}": ", ".join(g) for i, g in enumerate(grouping.named_groups())})
    params.update({f"env.{k}": v for k, v in tracking.run_environment().items()})
    params["eval.chosen_threshold"] = report["threshold"]
    params.update(grouping_params(cell_dir(cfg)))
    params["split.file"] = str(split_file) if split_file else "none"
    params.update({f"split.n_{k}": v for k, v in split_sizes.items()})
    metrics = {**flat_metrics(report["test"], "test"), **flat_metrics(report["test_at_0.5"], "test_at_0.5"),
               **flat_metrics(report["val"], "val_best"), "time/elapsed_s": elapsed}
    write_json(out / "label_keys.json", tracking.label_keys(grouping.label_names))
    artifacts = [out / name for name in ("config.yaml", "groups.yaml", "label_counts.csv", "classification_report.csv",
                                         "predictions_val.csv", "predictions_test.csv", "metrics.json",
                                         "per_label_f1.png", "label_keys.json")]
    artifacts += [split_file] if split_file else []
    artifacts += [p for p in cell_dir(cfg).glob("*.png")] + [p for p in cell_dir(cfg).glob("elbow.*")]
    artifacts += [p for n in ("k_choice.json", "task_similarity.csv", "affinity_cost.json")
                  if (p := cell_dir(cfg) / n).exists()]
    tracking.log_to_run(uri, run_id, params=params, metrics=metrics, artifacts=artifacts)


def print_summary(result: dict, report: dict, rerun: bool = False) -> None:
    """After training, and on a rerun from the saved result.json and metrics.json."""
    labels, group = result["labels"], result["group_index"]
    title = (f"{result['run_name']}" + (f" group {group}" if group is not None else "")
             + f" ({', '.join(labels[:6])}{', ...' if len(labels) > 6 else ''})")
    out = Path(result["folder"])
    uri = summary.saved_uri(out / "mlflow_run.json") if result.get("run_id") else None
    summary.print_summary(title, report, out, f"{result['elapsed_s']:.1f} s", result.get("run_id"), uri, rerun=rerun)
