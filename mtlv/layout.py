"""The on-disk layout of a cell, a job and a grouping: every file name MTLV writes there, in one place.

    <runs_dir>/<dataset>/<run name>-<cell key>/     a cell (CellLayout)
        groups.yaml, parent_run.json (STL/GMTL), aggregate.json, grouping files (GroupingFiles)
        model/          the one job of an MTL/GMHL cell (JobLayout)
        group-00/ ...   one job per group of an STL/GMTL cell (JobLayout)
    <runs_dir>/<dataset>/models/<model key>.json    which job folder trained a model (ModelRegistry)

The grouping files (GroupingFiles) are named in mtlv/grouping/files.py, beside the methods that write them.
A job folder and an aggregated STL/GMTL cell hold the same result files (ResultFiles): the report,
`mtlv.predict` and the tests read them by these names. Baselines use a job folder of their own.
Here, at the top of the package and below every floor that reads it (mtlv/run/, the study planner,
mtlv/models/inference.py): it imports only mtlv/io.py, mtlv/grouping/files.py and the option reader
(mtlv/options.py, for check_output_folders).
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mtlv.grouping.files import GROUPS_YAML, GroupingFiles
from mtlv.io import check_writable, read_json
from mtlv.options import MISSING, config_value

MODEL_DIR = "model"           # the job folder of a cell with one job (MTL, GMHL)
SWEEP_CELLS = "cells.json"    # in a Hydra sweep folder: the STL/GMTL cells it aggregates
MODELS_DIR = "models"         # in <runs_dir>/<dataset>: the model registry (reuse_models)
# The metrics of a result.json / aggregate.json (each a dict of numbers; null in the file: NaN).
RESULT_METRICS = ("test", "test_at_0.5", "val")


class ResultFiles:
    """The files of one evaluated result: a job, or an STL/GMTL cell aggregated from its group jobs."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def __fspath__(self) -> str:
        return str(self.folder)

    @property
    def name(self) -> str:
        return self.folder.name

    def exists(self) -> bool:
        return self.folder.exists()

    def mkdir(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    @property
    def config_yaml(self) -> Path:
        return self.folder / "config.yaml"

    @property
    def label_counts(self) -> Path:
        return self.folder / "label_counts.csv"

    def predictions(self, part: str) -> Path:
        """`part`: val or test."""
        return self.folder / f"predictions_{part}.csv"

    @property
    def classification_report(self) -> Path:
        return self.folder / "classification_report.csv"

    @property
    def metrics_json(self) -> Path:
        return self.folder / "metrics.json"

    @property
    def per_label_f1(self) -> Path:
        return self.folder / "per_label_f1.png"

    @property
    def label_keys(self) -> Path:
        return self.folder / "label_keys.json"

    @property
    def mlflow_run(self) -> Path:
        """The job's MLflow run id and store (a resumed job logs to the same run)."""
        return self.folder / "mlflow_run.json"

    @property
    def result_json(self) -> Path:
        """Written last: marks the job finished."""
        return self.folder / "result.json"

    @property
    def failed_json(self) -> Path:
        """Written when the job's last attempt failed (the error), removed when it starts again: a study's
        progress shows a failure when it happens, not when the whole sweep ends."""
        return self.folder / "failed.json"

    def metrics(self) -> dict:
        """metrics.json, its undefined values (null) as NaN."""
        return read_json(self.metrics_json, numbers=True)

    def result(self) -> dict:
        """result.json, its undefined metrics (null) as NaN."""
        return read_json(self.result_json, numbers=RESULT_METRICS)

    def evaluation_files(self) -> list[Path]:
        """The evaluation's files, in the order they are logged as MLflow artifacts."""
        return [self.metrics_json, self.classification_report, self.per_label_f1, self.predictions("val"),
                self.predictions("test"), self.label_keys]


class JobLayout(ResultFiles):
    """One training job's folder (or a baseline's)."""

    @property
    def groups_yaml(self) -> Path:
        return self.folder / GROUPS_YAML

    @property
    def checkpoints(self) -> Path:
        return self.folder / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def export(self) -> Path:
        return self.folder / "export"

    @property
    def lock(self) -> Path:
        """Held by the process training the job (mtlv/run/lock.py); the file stays, the OS lock goes."""
        return self.folder / "job.lock"

    @property
    def lock_owner(self) -> Path:
        """Who holds the lock (pid, host), for the line a waiting process logs."""
        return self.folder / "job.lock.owner.json"


class CellLayout(ResultFiles):
    """A cell's folder: its grouping, its job folder(s) and, for STL/GMTL, the aggregated result."""

    @property
    def groups_yaml(self) -> Path:
        return self.folder / GROUPS_YAML

    @property
    def grouping_files(self) -> GroupingFiles:
        return GroupingFiles(self.folder)

    @property
    def parent_run(self) -> Path:
        """The MLflow parent run of an STL/GMTL cell (id and store)."""
        return self.folder / "parent_run.json"

    @property
    def parent_lock(self) -> Path:
        """Held by the process that has the cell's parent run open, until it is ended (mtlv/run/lock.py)."""
        return self.folder / "parent_run.lock"

    @property
    def parent_open_lock(self) -> Path:
        """Held while a process decides whether to open the cell's parent run and writes parent_run.json."""
        return self.folder / "parent_run.json.lock"

    @property
    def aggregate_json(self) -> Path:
        """The aggregated result's summary (an STL/GMTL cell), with the group results it was made from."""
        return self.folder / "aggregate.json"

    def aggregate(self) -> dict:
        """aggregate.json, its undefined metrics (null) as NaN."""
        return read_json(self.aggregate_json, numbers=RESULT_METRICS)

    @property
    def model_job(self) -> JobLayout:
        return JobLayout(self.folder / MODEL_DIR)

    def group_dir(self, index: int) -> JobLayout:
        return JobLayout(self.folder / f"group-{int(index):02d}")

    def group_dirs(self, num_groups: int) -> list[JobLayout]:
        return [self.group_dir(i) for i in range(num_groups)]

    def group_exports(self) -> list[Path]:
        return sorted(self.folder.glob("group-*/export"))

    def job(self, placement: str, group_index: int | None) -> JobLayout:
        return self.model_job if placement == "heads" else self.group_dir(int(group_index))


class ModelRegistry:
    """`<runs_dir>/<dataset>/models/<model key>.json`: the job folder that trained the model with that key
    (mtlv/run/reuse.py), relative to `runs_dir`, so a runs folder moved or copied elsewhere still works."""

    def __init__(self, runs_dir: str | Path, dataset: str) -> None:
        self.runs_dir = Path(runs_dir)
        self.folder = self.runs_dir / dataset / MODELS_DIR

    def entry(self, model_key: str) -> Path:
        return self.folder / f"{model_key}.json"


def check_output_folders(cfg: DictConfig) -> None:
    """paths.output_dir, and the cache and job folders (below it unless set apart), can be written: a read-only
    folder is one line here, not an OSError from the first split or token file."""
    check_writable(cfg.paths.output_dir)
    for key in ("paths.cache_dir", "paths.runs_dir"):
        folder = config_value(cfg, key)
        if folder is not MISSING and folder is not None:
            check_writable(folder, key, f"set {key}=/a/writable/folder")
