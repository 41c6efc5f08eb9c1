"""MLflow store -> tidy tables: one row per *result* (an MTL/GMHL/baseline job run, or the parent run of
an STL/GMTL cell, which carries the aggregated metrics) and one row per (result, label) F1.

Group job runs of STL/GMTL are left out: each sees only its own labels. A sweep's group jobs carry the tag
mlflow.parentRunId; a group job run on its own (`hydra.mode=RUN group_index=i`) has no parent, so it is
recognised by its params (arch.placement=models, group_index set), left out, and named in a warning.
"""
from __future__ import annotations

import json
import logging
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mtlv import tracking
from mtlv.errors import ConfigError
from mtlv.run.record import PARAMS_METRIC

log = logging.getLogger(__name__)
KEY = ["dataset", "study", "arch", "model", "setting", "fold", "seed"]  # one result per key
# What makes two results comparable: the same documents, splits and evaluation rule. Runs that differ in
# these form separate studies (report sections), e.g. a smoke grid and a full run in one store.
STUDY_KEYS = {"split.folds": "folds", "dataset.limit": "limit", "dataset.fraction": "fraction",
              "split.test_size": "test_size", "split.val_size": "val_size", "eval.threshold": "threshold"}
# Training settings that should be equal within one table row (a mix is reported, not hidden).
TRAIN_KEYS = ("trainer.max_epochs", "model.max_length", "model.module.lr", "data.batch_size")
FEATURE_NAMES = {"name": "label", "description": "description"}  # the reference's names for the two features
COLUMNS = ["run_id", "run_name", "dataset", "study", "arch", "model", "feature", "k", "k_requested", "algorithm",
           "weighting", "setting", "folds", "val_size", "test_size", "n_train", "n_val", "n_test", "fold", "seed",
           "f1_macro", "f1_micro",
           "subset_accuracy", "n_undefined", "val_f1_macro", "elapsed_s", "compute_s", "trainings", "trainable_params",
           "start_time", "role", "cell",
           "cell_dir", "job_dir", "train_cfg"]


@dataclass
class Runs:
    runs: pd.DataFrame                      # one row per result, columns below
    labels: pd.DataFrame                    # run_id, label, f1
    uri: str = ""
    warnings: list[str] = field(default_factory=list)


def _num(value, cast=float):
    try:
        return cast(value) if value not in (None, "", "None", "null") else None
    except (TypeError, ValueError):
        return None


def weighting_of(params: dict) -> str:
    """The GMHL loss weighting chosen with `weighting=...` (its class, e.g. 'uncertainty'); '' without one
    (the module's own `loss_reduction`, as in the reference study)."""
    target = params.get("weighting._target_") or ""
    return target.rsplit(".", 1)[-1].lower()


def setting_of(params: dict) -> tuple[str | None, int | None, str]:
    """(feature, k, setting) of a clustering architecture; ('', None, '') for the others. The setting names
    the clusterer when it is not k-medoids and the weighting when one was chosen, so that every
    configuration of the beyond-the-thesis grid is its own result."""
    method = params.get("clustering.method")
    if method in (None, "", "none"):
        return None, None, ""
    weighting = weighting_of(params)
    suffix = f"-w{weighting}" if weighting else ""
    if method != "given":  # a learned grouping: kmedoids (name/description), cooccurrence, affinity
        raw = params.get("clustering.feature") if method == "kmedoids" else method
        feature = FEATURE_NAMES.get(raw or "", raw)
        requested = params.get("clustering.k")
        k = _num(params.get("clustering.chosen_k") if requested == "auto" else requested, int)
        algorithm = params.get("clustering.algorithm") or "kmedoids"
        suffix = ("" if algorithm == "kmedoids" else f"-{algorithm}") + suffix
        return feature, k, f"{feature}-k{'auto' if requested == 'auto' else k}{suffix}"
    if method == "given":
        return "given", None, f"given{suffix}"
    return None, None, ""


def study_of(params: dict) -> str:
    """'folds=4, fraction=0.2, ...': the data protocol of a run (test_size only matters without folds)."""
    parts = []
    for key, short in STUDY_KEYS.items():
        value = params.get(key)
        if value in (None, "", "None", "null") or (short == "test_size" and _num(params.get("split.folds"))):
            continue
        parts.append(f"{short}={value}")
    return ", ".join(parts)


def model_of(params: dict) -> str:
    """The model a result is tabled under: the encoder (`model.name`), with its head where that is not the
    reference's linear one (`model.module.head_hidden=256` -> 'minilm-mlp256'). A sweep over head depth then
    gets rows of its own, instead of replacing the linear-head results that share its (arch, fold, seed)."""
    hidden = _num(params.get("model.module.head_hidden"), int)
    name = params.get("model.name", "-")
    return f"{name}-mlp{hidden}" if hidden else name


def trainings_of(run) -> float:
    """Models trained for one result: an STL/GMTL cell's group models (its `num_groups` param, or its group.<i>
    params in stores older than it), one for MTL/GMHL, one per label for a one-vs-rest logistic regression
    baseline (its labels: those with a test F1 plus those without, test/n_undefined), one for a forest."""
    params, metrics = run.data.params, run.data.metrics
    if run.data.tags.get("mtlv.role") == "parent":
        groups = _num(params.get("num_groups"), int) or sum(k.startswith("group.") for k in params)
        return float(groups) if groups else np.nan
    if params.get("baseline.classifier") == "logreg":
        return float(sum(k.startswith("test/f1/") for k in metrics) + metrics.get("test/n_undefined", 0))
    return 1.0


def run_row(run) -> dict:
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    arch = tags.get("arch", params.get("arch.name", "?"))
    feature, k, setting = setting_of(params) if not arch.startswith("baseline") else (None, None, "")
    elapsed = metrics.get("time/elapsed_s", np.nan)
    return {
        "run_id": run.info.run_id, "run_name": run.info.run_name, "dataset": tags.get("dataset", "?"),
        "arch": arch, "model": model_of(params) if not arch.startswith("baseline") else "-",
        "feature": feature, "k": k, "k_requested": params.get("clustering.k") if feature else None,
        "algorithm": (params.get("clustering.algorithm") or "kmedoids") if feature else None,
        "weighting": weighting_of(params), "setting": setting,
        "folds": _num(params.get("split.folds"), int) or 0, "val_size": _num(params.get("split.val_size")),
        "test_size": _num(params.get("split.test_size")), "fold": _num(params.get("split.fold"), int) or 0,
        # the documents each part really had: a dataset's own split (OHSUMED's folders, a CSV's split_column)
        # is not what split.test_size says, and the corrected resampled t needs n_test / n_train
        **{f"n_{part}": _num(params.get(f"split.n_{part}")) for part in ("train", "val", "test")},
        "seed": _num(params.get("seed"), int),
        "f1_macro": metrics.get("test/f1_macro", np.nan), "f1_micro": metrics.get("test/f1_micro", np.nan),
        "subset_accuracy": metrics.get("test/subset_accuracy", np.nan),
        "n_undefined": metrics.get("test/n_undefined", np.nan),
        "val_f1_macro": metrics.get("val_best/f1_macro", np.nan),
        "elapsed_s": elapsed, "compute_s": metrics.get("time/sum_job_s", elapsed), "trainings": trainings_of(run),
        "trainable_params": metrics.get(PARAMS_METRIC, np.nan),
        "start_time": run.info.start_time, "role": tags.get("mtlv.role"), "cell": tags.get("cell", ""),
        "cell_dir": tags.get("mtlv.cell_dir", ""), "job_dir": tags.get("mtlv.job_dir", ""),
        "study": study_of(params), "train_cfg": ", ".join(f"{k}={params[k]}" for k in TRAIN_KEYS if k in params),
    }


def is_lone_group_job(run) -> bool:
    """A job of a one-model-per-group cell (STL/GMTL) that ran without its sweep: one group's labels only."""
    params, tags = run.data.params, run.data.tags
    return (tags.get("mtlv.role") == "job" and "mlflow.parentRunId" not in tags
            and (params.get("arch.placement") == "models" or _num(params.get("group_index"), int) is not None))


def is_result(run) -> bool:
    tags = run.data.tags
    role = tags.get("mtlv.role")
    finished = "test/f1_macro" in run.data.metrics  # a parent whose cell never aggregated has none
    return finished and (role == "parent" or (role == "job" and "mlflow.parentRunId" not in tags
                                              and not is_lone_group_job(run)))


def lone_group_run_name(run) -> str:
    """A group job's run name says its group (`gmtl-minilm-k2/g1: Cardiomegaly, +3`, record.job_run_name): add
    it only to a name that does not (runs logged before group jobs were named so)."""
    name, index = run.info.run_name, run.data.params.get("group_index", "?")
    return name if f"/g{index}:" in name else f"{name} (group {index})"


def lone_group_warning(runs: list) -> list[str]:
    if not runs:
        return []
    names = ", ".join(sorted({lone_group_run_name(r) for r in runs}))
    return [f"{len(runs)} STL/GMTL group job run(s) without their sweep are left out: each scores one group's "
            f"labels only, not the whole label set ({names}). Run the cell as a sweep (-m) to get its result."]


def legacy_csv_warning(runs: list) -> list[str]:
    """Results tagged with the plain dataset name `csv` (logged before a CSV's results were named by its file and
    data, `data.load.data_name`) from more than one file: the report cannot tell their data apart."""
    from mtlv.data.load import USER_TABLE

    paths = sorted({str(r.data.params.get("dataset.path")) for r in runs if r.data.tags.get("dataset") == USER_TABLE})
    if len(paths) < 2:
        return []
    return [f"dataset 'csv' holds results of {len(paths)} different files ({', '.join(paths)}), logged before MTLV "
            "named a CSV's results by its file and data: they are reported (and compared) as one dataset. Select one "
            "with filter=\"params.`dataset.path` = '...'\", or retrain them (each file then has its own section)."]


def search_all(client, experiment_ids: list[str], filter_string: str = "") -> list:
    runs, token = [], None
    while True:
        page = tracking.retry_locked(client.search_runs)(experiment_ids, filter_string, max_results=1000,
                                                          page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def check_filter(filter_string: str) -> None:
    """`filter=`: MLflow's search syntax, parsed here (the same grammar every store uses) so that a typo is one
    line naming it, not MLflow's traceback from inside the search."""
    if not filter_string:
        return
    from mlflow.exceptions import MlflowException
    from mlflow.utils.search_utils import SearchUtils

    try:
        SearchUtils.parse_search_filter(filter_string)
    except MlflowException as err:
        reason = str(err.message).strip().splitlines()[0] if str(err.message).strip() else type(err).__name__
        raise ConfigError(f"filter={filter_string!r}: not an MLflow search filter ({reason}); write e.g. "
                          "filter=\"params.trainer.max_epochs = '10' and tags.arch = 'gmtl'\" (values quoted; "
                          "https://mlflow.org/docs/latest/search-runs.html)") from None


def check_experiments(asked: list[str] | None, existing: list[str], uri: str) -> None:
    """`experiments=`: each one in the store (a misspelt name would otherwise report nothing, as if the store
    were empty)."""
    missing = [name for name in asked or [] if name not in existing]
    if missing:
        have = ", ".join(sorted(existing)) if existing else "none yet"
        raise ConfigError(f"experiments={list(asked)}: {', '.join(missing)} "
                          f"{'is' if len(missing) == 1 else 'are'} not an experiment of {uri}; it has: {have}")


def collect(uri: str, experiments: list[str] | None = None, filter_string: str = "",
            cells: list[str] | None = None) -> Runs:
    """All finished results in the store (or in the named experiments, or of the given cell folders: a study's
    own), deduplicated per KEY."""
    check_filter(filter_string)
    client = tracking.read_client(uri)
    exps = tracking.retry_locked(client.search_experiments)()
    check_experiments(experiments, [e.name for e in exps], uri)
    ids = [e.experiment_id for e in exps if experiments is None or e.name in experiments]
    every = search_all(client, ids, filter_string) if ids else []
    if cells is not None:
        wanted = {str(Path(c).resolve()) for c in cells}
        every = [r for r in every if str(Path(r.data.tags.get("mtlv.cell_dir") or "/").resolve()) in wanted]
    found = [r for r in every if is_result(r)]
    lone = lone_group_warning([r for r in every if "test/f1_macro" in r.data.metrics and is_lone_group_job(r)])
    rows = [run_row(r) for r in found]
    labels = [{"run_id": r.info.run_id, "label": key[len("test/f1/"):], "f1": value}
              for r in found for key, value in r.data.metrics.items() if key.startswith("test/f1/")]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if frame.empty:
        return Runs(frame, pd.DataFrame(columns=["run_id", "label", "f1"]), uri, lone)
    frame, warnings = deduplicate(frame)
    warnings = lone + legacy_csv_warning(found) + warnings
    label_frame = pd.DataFrame(labels, columns=["run_id", "label", "f1"])
    label_frame = label_frame[label_frame.run_id.isin(frame.run_id)].reset_index(drop=True)
    label_frame["label"] = real_label_names(uri, frame, label_frame)
    return Runs(frame.reset_index(drop=True), label_frame, uri, warnings)


# `tracking.label_key` appends this to a label name it had to change (`Cardiomegaly?` -> `Cardiomegaly_-87f2db93`)
CHANGED_KEY = re.compile(r"-[0-9a-f]{8}$")


def real_label_names(uri: str, frame: pd.DataFrame, labels: pd.DataFrame) -> pd.Series:
    """The label names behind the per-label metric keys (`test/f1/<key>`): a name MLflow would reject was logged
    under another key, and the run's label_keys.json maps it back. A key is a function of its name alone, so
    one run's map serves every run that logged that key: label_keys.json is read from as few runs as cover
    the changed-looking keys (runs logged before it existed, e.g. older baselines, are covered by the others).
    A key no map names stays as it is."""
    names: dict[str, str] = {}
    wanted = set(labels.label[labels.label.str.contains(CHANGED_KEY)])
    by_run = labels.groupby("run_id").label.agg(set)
    with tempfile.TemporaryDirectory(prefix="mtlv-report-") as tmp:
        for i, (_, row) in enumerate(frame.iterrows()):
            if not wanted or not (by_run.get(row.run_id, set()) & wanted):
                continue
            path = artifact(uri, row, "label_keys.json", f"{tmp}/{i}")
            if path is None:
                continue
            for name, key in json.loads(path.read_text(encoding="utf-8")).items():
                if key == tracking.label_key(name):  # a map that does not match the keys' rule is not trusted
                    names[key] = name
            wanted -= set(names)
    return labels.label.map(lambda key: names.get(key, key))


def deduplicate(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep the latest run per KEY. Reruns of the same config (same `cell`) are harmless; different
    cells under one key mean differently configured studies share the store, which the report says."""
    warnings = []
    for key, group in frame.groupby(KEY, dropna=False):
        if group["cell"].nunique() > 1:
            warnings.append(f"{dict(zip(KEY, key))}: {group['cell'].nunique()} differently configured runs "
                            f"({', '.join(sorted(group['cell']))}); the latest is used. Pass filter=... or "
                            "experiments=... to select one study.")
    latest = frame.sort_values("start_time").groupby(KEY, dropna=False, sort=False).tail(1)
    return latest.sort_values(KEY, na_position="first"), warnings


def artifact(uri: str, row: pd.Series, name: str, dst: str | Path | None = None) -> Path | None:
    """A run's artifact file: downloaded from the MLflow store, else read from the run's local folder."""
    dst = Path(dst or tempfile.mkdtemp(prefix="mtlv-report-"))
    dst.mkdir(parents=True, exist_ok=True)
    try:
        return Path(tracking.read_client(uri).download_artifacts(row["run_id"], name, str(dst)))
    except Exception as err:  # noqa: BLE001  (a moved or remote store: fall back to the run's folder)
        for folder in (row.get("job_dir"), row.get("cell_dir")):
            if folder and (Path(folder) / name).exists():
                return Path(folder) / name
        log.debug("no artifact %s for run %s: %s", name, row["run_id"], err)
        return None
