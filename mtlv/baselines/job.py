"""One classical baseline run (`python -m mtlv.baseline`): features and classifier from classical.py.

Same corpus loading, split files, threshold rule (chosen on validation), metrics and MLflow keys as a
training job, so its rows sit beside the encoders' in the report. Like training jobs, a finished
baseline lives in a content-addressed folder and is skipped when the same command runs again.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mtlv import tracking
from mtlv.data.load import data_fingerprint, data_name, experiment_name, load_corpus
from mtlv.checks import check_options
from mtlv.config import flatten, to_container
from mtlv.data.splits import label_count_table, load_or_make_split
from mtlv.evaluation.evaluate import evaluate
from mtlv.evaluation.predictions import Predictions
from mtlv.io import read_json, stable_hash, write_json, write_text
from mtlv.run import record
from mtlv.layout import JobLayout

log = logging.getLogger(__name__)
# The config keys that can change a baseline's result (model/trainer/arch nodes of train.yaml cannot).
IDENTITY_KEYS = ("dataset", "split", "seed", "baseline", "eval")


def arch_name(cfg: DictConfig) -> str:
    return f"baseline-{cfg.baseline.features}-{cfg.baseline.classifier}"


def run_name(cfg: DictConfig) -> str:
    return arch_name(cfg) + (f"-fold{cfg.split.fold}" if cfg.split.folds is not None else "")


def identity(cfg: DictConfig) -> dict:
    data = to_container(cfg)
    data["eval"] = {"threshold": data["eval"]["threshold"]}  # save_weights does not apply here
    return {**{key: data[key] for key in IDENTITY_KEYS}, "data_fingerprint": data_fingerprint(cfg)}


def job_dir(cfg: DictConfig, key: str | None = None) -> Path:
    """`key`: the baseline's identity hash, when the caller has it already."""
    return Path(cfg.paths.runs_dir) / cfg.dataset.name / f"{run_name(cfg)}-{key or stable_hash(identity(cfg))}"



def log_run(cfg: DictConfig, out: Path, report: dict, elapsed: float, size: int | None) -> str | None:
    if cfg.get("logger") is None:
        return None
    uri = tracking.resolve_uri(cfg.tracking.uri, cfg.tracking.fallback_uri)
    saved = JobLayout(out).mlflow_run
    if saved.exists() and cfg.resume:  # an interrupted earlier attempt: finish its run, do not add one
        run_id = read_json(saved)["run_id"]
    else:
        exp = tracking.experiment_id(uri, experiment_name(cfg), cfg.tracking.artifact_location)
        tracking.end_orphans(uri, exp, {"mtlv.job_dir": str(out), "mtlv.role": "job"})
        tags = {"arch": arch_name(cfg), "dataset": data_name(cfg), "cell": out.name, "mtlv.role": "job",
                "mtlv.job_dir": str(out), "mtlv.cell_dir": str(out)}
        run_id = tracking.create_run(uri, exp, run_name(cfg), tags)
        write_json(saved, {"run_id": run_id, "tracking_uri": uri})
    params = flatten(identity(cfg))
    params.update({"arch.name": arch_name(cfg), "eval.chosen_threshold": report["threshold"]})
    params.update(record.environment_params())
    job = JobLayout(out)
    artifacts = [job.config_yaml, job.label_counts, job.classification_report, job.predictions("val"),
                 job.predictions("test"), job.metrics_json]
    record.log_result(uri, run_id, params=params, metrics=record.result_metrics(report, size, elapsed_s=elapsed),
                      artifacts=artifacts, label_names=list(report["test"]["per_label"]), files=job, end=True)
    return run_id


def run_baseline(cfg: DictConfig) -> dict:
    from mtlv.baselines.classical import fit_predict

    check_options(cfg)
    key = stable_hash(identity(cfg))
    job = JobLayout(job_dir(cfg, key))
    out, done = job.folder, job.result_json
    if cfg.resume and done.exists() and read_json(done).get("key") == key:
        log.info("already finished with the same config: %s (skipped; resume=false reruns)", out)
        return job.result()
    start = time.time()
    corpus = load_corpus(cfg)
    split = load_or_make_split(corpus, cfg.paths.cache_dir, seed=int(cfg.seed), **cfg.split)
    texts = lambda idx: [corpus.texts[i] for i in idx]  # noqa: E731
    # fitted before the job's folder exists: an option the data refuses (baseline.min_df that keeps no term)
    # leaves no folder behind that looks like a started job
    (val_p, test_p), size = fit_predict(cfg.baseline, int(cfg.seed), texts(split.train),
                                        corpus.labels[split.train], [texts(split.val), texts(split.test)])
    out.mkdir(parents=True, exist_ok=True)
    counts = label_count_table(corpus, split)
    write_text(job.label_counts, counts.to_csv())
    record.warn_constant_labels(counts)
    write_text(job.config_yaml, OmegaConf.to_yaml(OmegaConf.create(identity(cfg))))
    preds = [Predictions([corpus.ids[i] for i in idx], p, corpus.labels[idx], list(corpus.label_names))
             for idx, p in ((split.val, val_p), (split.test, test_p))]
    report = evaluate(preds[0], preds[1], None, cfg.eval.threshold)
    elapsed = time.time() - start
    record.save_evaluation(job, preds[0], preds[1], report)
    run_id = log_run(cfg, out, report, elapsed, size)
    result = {"key": key, "run_name": run_name(cfg), "run_id": run_id, "elapsed_s": elapsed, "folder": str(out),
              "threshold": report["threshold"], "trainable_params": size,
              "test": record.headline(report["test"])}
    write_json(done, result)
    record.print_baseline(run_name(cfg), f"{data_name(cfg)}, {split.sizes()}", report, out, elapsed, run_id)
    return result

