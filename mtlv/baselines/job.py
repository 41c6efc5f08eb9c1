"""One classical baseline run (`python -m mtlv.baseline`): features and classifier from classical.py.

Same corpus loading, split files, threshold rule (chosen on validation), metrics and MLflow keys as a
training job, so its rows sit beside the encoders' in the report. Like training jobs, a finished
baseline lives in a content-addressed folder and is skipped when the same command runs again.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mtlv import tracking
from mtlv.data.load import data_fingerprint, data_name, load_corpus
from mtlv.checks import check_options
from mtlv.config import flatten, to_container
from mtlv.data.splits import label_count_table, load_or_make_split
from mtlv.evaluation.evaluate import evaluate
from mtlv.evaluation.predictions import Predictions
from mtlv.io import read_json, stable_hash, write_json, write_text
from mtlv.run import record
from mtlv.layout import JobLayout
from mtlv.run.spec import TrackingSpec

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


@dataclass(frozen=True, eq=False)
class BaselineSpec:
    """A baseline run resolved once at its entry (`resolve`: its option checks, once): its identity, key,
    folder and names, and where it is tracked (mtlv/run/spec.py's `TrackingSpec`)."""

    identity: dict
    key: str
    job: JobLayout
    arch: str
    run_name: str
    data_name: str
    resume: bool
    tracking: TrackingSpec | None

    @classmethod
    def resolve(cls, cfg: DictConfig, options_checked: bool = False) -> BaselineSpec:
        """`options_checked`: the entry checked them already (the study planner, with every cell's)."""
        from mtlv.checks import checked_by_preflight

        if not (options_checked or checked_by_preflight(cfg)):
            check_options(cfg)
        ident = identity(cfg)
        key = stable_hash(ident)
        folder = Path(cfg.paths.runs_dir) / cfg.dataset.name / f"{run_name(cfg)}-{key}"
        return cls(ident, key, JobLayout(folder), arch_name(cfg), run_name(cfg), data_name(cfg), bool(cfg.resume),
                   TrackingSpec.resolve(cfg))

    def finished(self) -> bool:
        done = self.job.result_json
        return self.resume and done.exists() and read_json(done).get("key") == self.key


def log_run(spec: BaselineSpec, report: dict, elapsed: float, size: int | None) -> str | None:
    if spec.tracking is None:
        return None
    uri, job = spec.tracking.uri, spec.job
    out, saved = job.folder, job.mlflow_run
    if saved.exists() and spec.resume:  # an interrupted earlier attempt: finish its run, do not add one
        run_id = read_json(saved)["run_id"]
    else:
        exp = spec.tracking.experiment_id
        tracking.end_orphans(uri, exp, {"mtlv.job_dir": str(out), "mtlv.role": "job"})
        tags = {"arch": spec.arch, "dataset": spec.data_name, "cell": out.name, "mtlv.role": "job",
                "mtlv.job_dir": str(out), "mtlv.cell_dir": str(out)}
        run_id = tracking.create_run(uri, exp, spec.run_name, tags)
        write_json(saved, {"run_id": run_id, "tracking_uri": uri})
    params = flatten(spec.identity)
    params.update({"arch.name": spec.arch, "eval.chosen_threshold": report["threshold"]})
    params.update(record.environment_params())
    artifacts = [job.config_yaml, job.label_counts, job.classification_report, job.predictions("val"),
                 job.predictions("test"), job.metrics_json]
    record.log_result(uri, run_id, params=params, metrics=record.result_metrics(report, size, elapsed_s=elapsed),
                      artifacts=artifacts, label_names=list(report["test"]["per_label"]), files=job, end=True)
    return run_id


def run_baseline(cfg: DictConfig) -> dict:
    from mtlv.baselines.classical import fit_predict

    spec = BaselineSpec.resolve(cfg)
    job = spec.job
    out, done = job.folder, job.result_json
    if spec.finished():
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
    write_text(job.config_yaml, OmegaConf.to_yaml(OmegaConf.create(spec.identity)))
    preds = [Predictions([corpus.ids[i] for i in idx], p, corpus.labels[idx], list(corpus.label_names))
             for idx, p in ((split.val, val_p), (split.test, test_p))]
    report = evaluate(preds[0], preds[1], None, cfg.eval.threshold)
    elapsed = time.time() - start
    record.save_evaluation(job, preds[0], preds[1], report)
    run_id = log_run(spec, report, elapsed, size)
    result = {"key": spec.key, "run_name": spec.run_name, "run_id": run_id, "elapsed_s": elapsed, "folder": str(out),
              "threshold": report["threshold"], "trainable_params": size,
              "test": record.headline(report["test"])}
    write_json(done, result)
    record.print_baseline(spec.run_name, f"{spec.data_name}, {split.sizes()}", report, out, elapsed, run_id)
    return result
