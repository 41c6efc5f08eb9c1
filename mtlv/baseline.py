"""Classical baseline: `python -m mtlv.baseline [dataset=openi] [experiment=openi_paper] [baseline.features=bow]
[baseline.classifier=random_forest]` (add `-m split.fold=0,1,2,3` for every fold).

Same corpus loading, split files, threshold rule (chosen on validation), metrics and MLflow keys as a
training job, so its rows sit beside the encoders' in the report. Like training jobs, a finished
baseline lives in a content-addressed folder and is skipped when the same command runs again.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

import mtlv.config  # noqa: F401  (registers resolvers before Hydra composes)
from mtlv import tracking
from mtlv.cell import data_fingerprint, load_corpus
from mtlv.checks import check_options
from mtlv.config import CONF_DIR, flatten, to_container
from mtlv.errors import entry_point
from mtlv.data.splits import label_count_table, load_or_make_split
from mtlv.evaluation.evaluate import evaluate
from mtlv.evaluation.metrics import flat_metrics
from mtlv.evaluation.predictions import Predictions
from mtlv.evaluation.report import classification_report, metrics_table
from mtlv.io import read_json, stable_hash, write_json, write_text

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


def job_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.runs_dir) / cfg.dataset.name / f"{run_name(cfg)}-{stable_hash(identity(cfg))}"


def log_run(cfg: DictConfig, out: Path, report: dict, elapsed: float) -> str | None:
    if cfg.get("logger") is None:
        return None
    uri = tracking.resolve_uri(cfg.tracking.uri, cfg.tracking.fallback_uri)
    saved = out / "mlflow_run.json"
    if saved.exists() and cfg.resume:  # an interrupted earlier attempt: finish its run, do not add one
        run_id = read_json(saved)["run_id"]
    else:
        exp = tracking.experiment_id(uri, cfg.logger.experiment_name, cfg.tracking.artifact_location)
        tracking.end_orphans(uri, exp, {"mtlv.job_dir": str(out), "mtlv.role": "job"})
        tags = {"arch": arch_name(cfg), "dataset": cfg.dataset.name, "cell": out.name, "mtlv.role": "job",
                "mtlv.job_dir": str(out), "mtlv.cell_dir": str(out)}
        run_id = tracking.create_run(uri, exp, run_name(cfg), tags)
        write_json(saved, {"run_id": run_id, "tracking_uri": uri})
    params = flatten(identity(cfg))
    params.update({"arch.name": arch_name(cfg), "eval.chosen_threshold": report["threshold"]})
    params.update({f"env.{k}": v for k, v in tracking.run_environment().items()})
    metrics = {**flat_metrics(report["test"], "test"), **flat_metrics(report["test_at_0.5"], "test_at_0.5"),
               **flat_metrics(report["val"], "val_best"), "time/elapsed_s": elapsed}
    names = ("config.yaml", "label_counts.csv", "classification_report.csv", "predictions_val.csv",
             "predictions_test.csv", "metrics.json")
    tracking.log_to_run(uri, run_id, params=params, metrics=metrics, artifacts=[out / n for n in names])
    tracking.end_run(uri, run_id)
    return run_id


def run_baseline(cfg: DictConfig) -> dict:
    from mtlv.classical import fit_predict

    check_options(cfg)
    out = job_dir(cfg)
    key = stable_hash(identity(cfg))
    done = out / "result.json"
    if cfg.resume and done.exists() and read_json(done).get("key") == key:
        log.info("already finished with the same config: %s (skipped; resume=false reruns)", out)
        return read_json(done)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    corpus = load_corpus(cfg)
    split = load_or_make_split(corpus, cfg.paths.cache_dir, seed=int(cfg.seed), **cfg.split)
    write_text(out / "label_counts.csv", label_count_table(corpus, split).to_csv())
    write_text(out / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(identity(cfg))))

    texts = lambda idx: [corpus.texts[i] for i in idx]  # noqa: E731
    val_p, test_p = fit_predict(cfg.baseline, int(cfg.seed), texts(split.train), corpus.labels[split.train],
                                [texts(split.val), texts(split.test)])
    preds = [Predictions([corpus.ids[i] for i in idx], p, corpus.labels[idx], list(corpus.label_names))
             for idx, p in ((split.val, val_p), (split.test, test_p))]
    report = evaluate(preds[0], preds[1], None, cfg.eval.threshold)
    elapsed = time.time() - start
    preds[0].save(out / "predictions_val.csv")
    preds[1].save(out / "predictions_test.csv")
    write_text(out / "classification_report.csv", classification_report(report["test"]).to_csv(index=False))
    write_json(out / "metrics.json", report)
    run_id = log_run(cfg, out, report, elapsed)
    result = {"key": key, "run_name": run_name(cfg), "run_id": run_id, "elapsed_s": elapsed, "folder": str(out),
              "threshold": report["threshold"],
              "test": {k: report["test"][k] for k in ("f1_macro", "f1_micro", "subset_accuracy", "n_undefined")}}
    write_json(done, result)
    print(f"\n== {run_name(cfg)} ({cfg.dataset.name}, {split.sizes()})\nthreshold chosen on validation: "
          f"{report['threshold']}\n" + metrics_table({"test @ val-chosen threshold": report["test"],
                                                     "test @ 0.5": report["test_at_0.5"]})
          + f"\noutputs: {out}  ({elapsed:.1f} s)" + (f"\nMLflow run id: {run_id}" if run_id else ""), flush=True)
    return result


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="baseline")
@entry_point
def main(cfg: DictConfig) -> float:
    return run_baseline(cfg)["test"]["f1_macro"]


if __name__ == "__main__":
    main()
