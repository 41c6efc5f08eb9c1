"""Aggregate a one-model-per-group cell (STL, GMTL) into one result comparable with MTL/GMHL:
join the group jobs' validation and test probabilities into the full label matrix, choose the
threshold on validation, compute the same metrics, log them to the cell's parent MLflow run.

`python -m mtlv.aggregate <cell folder | sweep folder | parent run id> [--tracking-uri URI]`
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import yaml

from mtlv import tracking
from mtlv.errors import MissingResultsError, MTLVError, entry_point
from mtlv.evaluation.evaluate import evaluate
from mtlv.evaluation.metrics import flat_metrics
from mtlv.evaluation.plots import plot_per_label_f1
from mtlv.evaluation.predictions import Predictions, join
from mtlv.evaluation.report import classification_report
from mtlv.grouping import TaskGrouping
from mtlv.io import read_json, write_json, write_text
from mtlv.summary import print_summary, saved_uri

log = logging.getLogger(__name__)


def group_results(folder: Path, grouping: TaskGrouping) -> list[dict]:
    results, missing = [], []
    for i, names in enumerate(grouping.named_groups()):
        done = folder / f"group-{i:02d}" / "result.json"
        if done.exists():
            results.append(read_json(done))
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
    if not (folder / "groups.yaml").exists():
        raise MTLVError(f"{folder} is not a sweep cell folder (no groups.yaml)")
    grouping = TaskGrouping.load(folder / "groups.yaml")
    results = group_results(folder, grouping)
    done = [[r.get("key"), r["end"]] for r in results]  # a group job retrained since has another end time
    saved, parent = folder / "aggregate.json", folder / "parent_run.json"
    if reuse and saved.exists() and (folder / "metrics.json").exists():
        summary = read_json(saved)  # reused only when logged to the cell's current parent run (if any)
        run_id = read_json(parent)["run_id"] if parent.exists() else None
        if summary.get("jobs") == done and summary.get("run_id") == run_id:
            print_cell(summary, read_json(folder / "metrics.json"), folder, grouping.num_groups, rerun=True)
            return summary
    jobs = [folder / f"group-{i:02d}" for i in range(grouping.num_groups)]
    labels = list(grouping.label_names)
    val, test = (join([Predictions.load(j / name) for j in jobs], labels, [j / name for j in jobs])
                 for name in ("predictions_val.csv", "predictions_test.csv"))
    job_cfg = yaml.safe_load((jobs[0] / "config.yaml").read_text())
    report = evaluate(val, test, [list(g) for g in grouping.groups], job_cfg["eval"]["threshold"])
    timing = {"elapsed_s": max(r["end"] for r in results) - min(r["start"] for r in results),
              "sum_job_s": sum(r["elapsed_s"] for r in results), "num_jobs": len(results)}
    val.save(folder / "predictions_val.csv")
    test.save(folder / "predictions_test.csv")
    write_text(folder / "classification_report.csv", classification_report(report["test"]).to_csv(index=False))
    summary = {"run_name": results[0]["run_name"], "threshold": report["threshold"], **timing,
               **{k: {m: report[k][m] for m in ("f1_macro", "f1_micro", "subset_accuracy", "n_undefined")}
                  for k in ("test", "val", "test_at_0.5")}, "jobs": done}
    write_json(folder / "metrics.json", report)
    plot_per_label_f1(report["test"], folder / "per_label_f1.png", title=f"{results[0]['run_name']}: test F1 per label")
    if parent.exists():
        info = read_json(parent)
        write_json(folder / "label_keys.json", tracking.label_keys(labels))
        metrics = {**flat_metrics(report["test"], "test"), **flat_metrics(report["test_at_0.5"], "test_at_0.5"),
                   **flat_metrics(report["val"], "val_best"), "time/elapsed_s": timing["elapsed_s"],
                   "time/sum_job_s": timing["sum_job_s"]}
        tracking.log_to_run(info["tracking_uri"], info["run_id"], metrics=metrics,
                            params={"eval.chosen_threshold": report["threshold"]},
                            artifacts=[folder / n for n in ("metrics.json", "classification_report.csv", "per_label_f1.png",
                                                            "predictions_val.csv", "predictions_test.csv", "label_keys.json")])
        tracking.end_run(info["tracking_uri"], info["run_id"])
        summary["run_id"] = info["run_id"]
    write_json(saved, summary)
    print_cell(summary, report, folder, grouping.num_groups)
    return summary


def print_cell(summary: dict, report: dict, folder: Path, num_groups: int, rerun: bool = False) -> None:
    print_summary(f"{summary['run_name']}: {num_groups} group models aggregated", report, folder,
                  f"{summary['elapsed_s']:.1f} s elapsed, {summary['sum_job_s']:.1f} s summed over jobs",
                  summary.get("run_id"), saved_uri(folder / "parent_run.json") if "run_id" in summary else None,
                  run_label="MLflow parent run id", rerun=rerun)


def find_cells(target: str, tracking_uri: str | None) -> list[Path]:
    path = Path(target)
    if (path / "groups.yaml").exists():
        return [path]
    if (path / "cells.json").exists():
        return [Path(p) for p in read_json(path / "cells.json")]
    if path.exists():
        raise MTLVError(f"{path} is neither a cell folder (with groups.yaml) nor a sweep folder (with cells.json)")
    if tracking_uri is None:
        from mtlv.config import compose

        tracking_uri = compose().tracking.uri
    try:
        run = tracking.client(tracking_uri).get_run(target)
    except Exception as err:
        raise MTLVError(f"{target!r} is not a folder, and not a run id in the MLflow store {tracking_uri} "
                        f"(use --tracking-uri for another store): {err}") from err
    cell = run.data.tags.get("mtlv.cell_dir")
    if not cell:
        raise MTLVError(f"run {target} is not the parent run of an STL/GMTL sweep (no mtlv.cell_dir tag)")
    return [Path(cell)]


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mtlv.aggregate", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="cell folder, Hydra sweep folder, or parent MLflow run id")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store of the run id (default: MTLV's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for cell in find_cells(args.target, args.tracking_uri):
        aggregate_cell(cell)
    return 0


if __name__ == "__main__":
    sys.exit(main())
