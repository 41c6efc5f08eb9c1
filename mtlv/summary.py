"""The summary printed when a job or an STL/GMTL cell finishes, and printed again from its saved files
when a rerun finds it finished, so a returning user sees the same metrics, run id and UI command."""
from __future__ import annotations

from pathlib import Path

from mtlv import tracking
from mtlv.evaluation.report import metrics_table
from mtlv.io import read_json

NOT_RETRAINED = "already finished with the same config: not retrained, this is its saved result (resume=false retrains)"


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
