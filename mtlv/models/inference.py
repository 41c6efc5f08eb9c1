"""Labels of new texts from a trained MTL/GMHL model or a whole STL/GMTL set of group models (the
machinery of `python -m mtlv.predict`). Thresholds are those chosen on validation when the models
were evaluated.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mtlv.errors import DataError, MTLVError
from mtlv.grouping.partition import TaskGrouping
from mtlv.io import atomic_path, read_json
from mtlv.layout import CellLayout, JobLayout


def resolve_folder(run: str, tracking_uri: str) -> Path:
    path = Path(run)
    if path.exists():
        return path
    from mtlv import tracking

    try:
        tags = tracking.read_client(tracking_uri).get_run(run).data.tags
    except Exception as err:
        raise MTLVError(f"run={run!r} is neither a folder nor a run id in {tracking_uri} "
                        f"(set tracking_uri=... for another store): {err}") from err
    folder = tags.get("mtlv.cell_dir") if tags.get("mtlv.role") == "parent" else tags.get("mtlv.job_dir")
    if not folder:
        raise MTLVError(f"MLflow run {run} was not made by mtlv.train")
    return Path(folder)


def model_set(folder: Path) -> tuple[list[Path], object]:
    """Export folders to apply, and the threshold: one number, or a list with one per label (in the
    label order the thresholds were chosen in, eval.threshold=per_label)."""
    from mtlv.models.export import META

    job, cell = JobLayout(folder), CellLayout(folder)
    for export in (job.export, cell.model_job.export):
        if export.exists():
            return [export], read_json(export / META)["threshold"]
    groups = cell.group_exports()
    if groups and cell.aggregate_json.exists():
        return groups, read_json(cell.aggregate_json)["threshold"]
    raise MTLVError(f"{folder} has no trained model export ({job.export.name}/, or one per group job with "
                    f"{cell.aggregate_json.name}); train with eval.save_weights=true, and aggregate STL/GMTL sweeps first")


def read_texts(source: str, text_column: str, id_column: str | None) -> tuple[list[str], list[str]]:
    if source == "-":
        ids, texts = _text_lines(sys.stdin.read())
    else:
        ids, texts = _read_file(Path(source), text_column, id_column)
    if not texts:
        raise DataError(f"input={source}: no texts to predict (empty input); give one text per line, or a "
                        f"CSV/TSV/JSONL file with a {text_column!r} column")
    return ids, texts


def _text_lines(text: str) -> tuple[list[str], list[str]]:
    texts = [line.strip() for line in text.splitlines() if line.strip()]
    return [str(i) for i in range(len(texts))], texts


def _read_file(path: Path, text_column: str, id_column: str | None) -> tuple[list[str], list[str]]:
    if not path.exists():
        raise DataError(f"input={path}: file not found")
    if path.is_dir():
        raise DataError(f"input={path} is a folder; give a CSV/TSV/JSONL/TXT file, or - for stdin")
    if path.suffix in (".txt", ""):
        return _text_lines(path.read_text(encoding="utf-8", errors="replace"))
    kind = {".jsonl": "JSON lines", ".json": "JSON lines", ".tsv": "TSV"}.get(path.suffix, "CSV")
    try:
        frame = pd.read_json(path, lines=True) if kind == "JSON lines" else \
            pd.read_csv(path, sep="\t" if kind == "TSV" else ",", encoding_errors="replace")
    except pd.errors.EmptyDataError:
        return [], []
    except (ValueError, pd.errors.ParserError) as err:  # pandas' parse errors are ValueErrors
        raise DataError(f"input={path}: cannot parse it as {kind} ({str(err).strip()}); fix the file, or give "
                        "plain text with one document per line (.txt)") from err
    if text_column not in frame.columns:
        raise DataError(f"{path}: no column {text_column!r} (columns: {list(frame.columns)}); set text_column=...")
    if id_column and id_column not in frame.columns:
        raise DataError(f"{path}: no column {id_column!r} (columns: {list(frame.columns)}); set id_column=... or "
                        "id_column=null")
    ids = frame[id_column].astype(str).tolist() if id_column else [str(i) for i in range(len(frame))]
    return ids, frame[text_column].fillna("").astype(str).tolist()


def predict(folder: Path, ids: list[str], texts: list[str], batch_size: int = 32) -> pd.DataFrame:
    from mtlv.models.export import ExportedModel

    exports, threshold = model_set(folder)
    probs, names = [], []
    for export in exports:
        model = ExportedModel(export)
        probs.append(model.predict_proba(texts, batch_size).numpy())
        names += model.meta["label_names"]
    matrix = np.concatenate(probs, axis=1)
    if len(exports) > 1:  # group models: back to the dataset's label order
        order = list(TaskGrouping.load(CellLayout(folder).groups_yaml).label_names)
        matrix = matrix[:, [names.index(n) for n in order]]
        names = order
    if isinstance(threshold, list):  # per-label thresholds, in the label order they were chosen in
        thresholds = np.asarray(threshold, dtype=float)
    else:
        thresholds = np.full(len(names), float(threshold))
    frame = pd.DataFrame({"id": ids})
    for j, name in enumerate(names):
        frame[f"prob:{name}"] = matrix[:, j].round(6)
    frame["labels"] = [";".join(n for n, p, t in zip(names, row, thresholds) if p >= t) for row in matrix]
    return frame



def write_predictions(frame: pd.DataFrame, output: str | None) -> None:
    """CSV to stdout (output=null), else a .jsonl or .csv file written atomically."""
    if output is None:
        frame.to_csv(sys.stdout, index=False)
        return
    out = Path(output)
    with atomic_path(out) as tmp:
        if out.suffix == ".jsonl":
            frame.to_json(tmp, orient="records", lines=True)
        else:
            frame.to_csv(tmp, index=False)
    print(f"wrote {len(frame)} predictions to {out}", file=sys.stderr)
