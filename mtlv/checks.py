"""Checks that run before any data is tokenized or any model is loaded.

`check_options` reads only the config (types, ranges, choices, the output folder, the
accelerator); `check_corpus` adds what needs the loaded documents (sizes, labels); `check_config`
the options that depend on the labels. Each failure is a ConfigError/DataError naming the value
and the fix, which the entry points print as one `error:` line (exit code 2).
"""
from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from mtlv.data.splits import validate_split_options
from mtlv.errors import ConfigError, DataError, entry_point, in_sweep_job, report_and_exit

log = logging.getLogger(__name__)

MIN_DOCUMENTS = 10  # enough for the smallest parts below (with the default split sizes)
# The fewest documents a part may have: fewer is no training (one document) or no measurement (a threshold
# chosen on, or an F1 of, a single document); a run with such a part would still "finish" with numbers.
MIN_PARTS = {"train": 5, "validation": 2, "test": 2}


@dataclass(frozen=True)
class Option:
    """One config value: its type (int, float or str choices), range, and whether null is allowed.
    A key the composed config lacks (e.g. dataset.fraction outside OHSUMED) is not checked."""

    key: str
    kind: type = int                      # int | float | bool | str
    low: float | None = None              # smallest allowed value (inclusive)
    high: float | None = None             # largest allowed value
    high_open: bool = False               # high itself is not allowed
    choices: tuple | Callable[[], tuple] | None = None
    null: bool = False
    example: object = None
    words: tuple[str, ...] = ()           # strings allowed besides numbers (e.g. clustering.k=auto)

    def problem(self, value: object) -> str | None:
        if value is None:
            return None if self.null else "must be set"
        if value in self.words:
            return None
        if self.choices is not None:
            choices = self.choices() if callable(self.choices) else self.choices
            return None if value in choices else "use one of " + ", ".join(_text(c) for c in choices)
        if self.kind is bool:
            return None if isinstance(value, bool) else "must be true or false" + "".join(f" or {w}" for w in self.words)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = "a whole number" if self.kind is int else "a number"
            return f"must be {kind}" + "".join(f" or {w}" for w in self.words)
        if self.kind is int and not isinstance(value, int):
            return "must be a whole number"
        if (self.low is not None and value < self.low) or (self.high is not None and (
                value > self.high or (self.high_open and value == self.high))):
            return "must be " + self.range_text()
        return None

    def range_text(self) -> str:
        low, high = _number(self.low), _number(self.high)
        if self.high is None:
            return f"at least {low}"
        upper = f"below {high}" if self.high_open else f"at most {high}"
        return upper if self.low is None else f"from {low} to {high}" + (" (exclusive)" if self.high_open else "")

    def message(self, value: object, problem: str) -> str:
        shown = f"'{value}'" if isinstance(value, str) else _text(value)
        null = " (or null)" if self.null else ""
        fix = f" (e.g. {self.key}={self.example})" if self.example is not None else ""
        return f"{self.key}={shown}: {problem}{null}{fix}"


def _text(value: object) -> str:
    return "null" if value is None else str(value)


def _number(value: float | None) -> str:
    """A bound as written: whole numbers in full (seed: 4294967295), others short (1e-05)."""
    return str(int(value)) if isinstance(value, int) else f"{value:g}" if value is not None else ""


@dataclass(frozen=True)
class Workers(Option):
    """joblib's n_jobs: how many workers, or, negative, counted back from this machine's cores (-1: all,
    -2: all but one, ... -cores: one). joblib refuses 0 only once the work has started, and quietly runs
    one worker for anything below -cores."""

    def problem(self, value: object) -> str | None:
        problem = super().problem(value)
        if problem is not None or value is None or value in self.words:
            return problem
        from joblib import cpu_count  # the count joblib itself uses (CPU affinity and cgroup quotas)

        cores = cpu_count()
        if value == 0 or value < -cores:
            return (f"must be 1 or more, or from -1 (all {cores} cores here) down to -{cores} (one): -k leaves "
                    f"k-1 cores free")
        return None


def _declared(ref: str) -> Callable[[], tuple]:
    """The choices that the code implementing an option declares (`module.NAME`: a tuple, or a registry whose
    keys are the choices), read when first checked. The modules named sit on this floor and import neither
    torch nor Lightning, so a bad value is one error line before they load (tests/test_option_choices.py)."""
    def read() -> tuple:
        import importlib

        module, _, name = ref.rpartition(".")
        return tuple(getattr(importlib.import_module(module), name))

    read.ref = ref
    return read


# numpy, torch and Lightning's seed_everything take seeds from 0 to 2**32 - 1
SEED_MAX = 2**32 - 1

# Every number and choice a user may set on the command line; groups of conf/ not listed here
# (dataset sources, loggers, callbacks) are checked by the code they configure.
OPTIONS: tuple[Option, ...] = (
    Option("seed", low=0, high=SEED_MAX, example=42),
    Option("resume", bool),
    Option("reuse_models", bool),
    Option("group_index", low=0, null=True),
    Option("torch_threads", low=1, null=True, example=1),
    Option("dataset.limit", low=MIN_DOCUMENTS, null=True, example=200),
    Option("dataset.fraction", float, low=0, high=1, null=True, example=0.2),
    Option("split.folds", null=True, example=5),  # split ranges: validate_split_options
    Option("split.fold", example=0),
    Option("split.test_size", float, example=0.2),
    Option("split.val_size", float, example=0.15),
    Option("split.use_given", bool),
    Option("data.batch_size", low=1, example=16),
    Option("data.eval_batch_size", low=1, example=64),
    Option("data.num_workers", low=0, example=0),
    Option("data.length_grouping", bool),
    Option("data.pin_memory", bool, null=True),
    Option("eval.threshold", str, choices=_declared("mtlv.evaluation.thresholds.THRESHOLD_MODES")),
    Option("eval.save_weights", bool),
    Option("model.max_length", example=128),  # range: check_max_length (it depends on the model)
    Option("model.trust_remote_code", bool),
    Option("model.module.pooling", str, choices=_declared("mtlv.models.options.POOLINGS")),
    Option("model.module.dropout", float, low=0, high=1, high_open=True, example=0.1),
    Option("model.module.lr", float, low=0, example=2e-5),
    Option("model.module.head_lr", float, low=0, null=True, example=1e-3),
    Option("model.module.weight_decay", float, low=0, example=0.01),
    Option("model.module.warmup_ratio", float, low=0, high=1, high_open=True, example=0.1),
    Option("model.module.schedule", str, choices=_declared("mtlv.models.options.SCHEDULES")),
    Option("model.module.loss_reduction", str, choices=_declared("mtlv.models.options.LOSS_REDUCTIONS")),
    Option("model.module.freeze_encoder", bool),
    Option("model.module.fused_adamw", bool, null=True),
    Option("model.module.head_hidden", low=1, null=True, example=256),
    Option("arch.inprocess", bool),
    Option("data.test_curve", bool),
    Option("trainer.accelerator", str, choices=("auto", "cpu", "gpu", "cuda", "mps", "tpu")),  # Lightning's names
    Option("trainer.max_epochs", low=1, example=3),
    Option("trainer.accumulate_grad_batches", low=1, example=1),
    Option("trainer.gradient_clip_val", float, low=0, null=True, example=1.0),
    Option("trainer.log_every_n_steps", low=1, example=10),
    Option("trainer.num_sanity_val_steps", low=-1, example=0),
    # Lightning's "warn": deterministic where CUDA has such kernels, a warning where it has none
    Option("trainer.deterministic", bool, words=("warn",), null=True),
    # declared here for mtlv/run/progress.py (it imports Lightning, and checks sit below it): `choices`
    Option("callbacks.progress_bar.style", str, choices=("auto", "bar", "lines")),
    Option("callbacks.progress_bar.refresh_rate", low=0, example=10),
    Option("callbacks.progress_bar.every_n_steps", low=0, example=50),
    Option("clustering.k", null=True, example=3, words=("auto",)),  # range: the grouping method's check
    Option("clustering.k_max", low=1, example=10),
    Option("clustering.feature", str, choices=_declared("mtlv.grouping.features.FEATURES")),
    Option("clustering.algorithm", str, choices=_declared("mtlv.grouping.clusterers.ALGORITHMS")),
    Option("clustering.k_select", str, choices=_declared("mtlv.grouping.choose_k.SELECTORS")),
    Option("clustering.linkage", str, choices=_declared("mtlv.grouping.clusterers.LINKAGES")),
    Option("clustering.steps", low=1, example=30),
    Option("clustering.scale", str, choices=_declared("mtlv.grouping.features.SCALES")),
    Option("clustering.backend", str, choices=_declared("mtlv.grouping.kmedoids.BACKENDS")),
    Option("clustering.max_length", low=8, example=64),
    # declared here for mtlv/baselines/classical.py (checks sit below it): `choices`
    Option("baseline.features", str, choices=("tfidf", "bow")),
    Option("baseline.classifier", str, choices=("logreg", "random_forest")),
    Option("baseline.ngram_max", low=1, example=2),
    Option("baseline.min_df", low=1, example=2),
    Option("baseline.max_features", low=1, null=True, example=50000),
    Option("baseline.C", float, low=0, example=10.0),
    Option("baseline.n_estimators", low=1, example=300),
    Workers("baseline.n_jobs", example=1),
    Workers("hydra.launcher.n_jobs", example=2),  # hydra/launcher=parallel (joblib)
)
_MISSING = object()


def choices(key: str) -> tuple:
    """The choices of OPTIONS' `key`: for code above this floor that implements an option whose list is declared
    here (the progress bar's style, the baseline's features and classifier)."""
    option = next(o for o in OPTIONS if o.key == key)
    return tuple(option.choices() if callable(option.choices) else option.choices)


def _value(cfg: DictConfig, key: str) -> object:
    try:
        return OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=False)
    except Exception as err:  # an interpolation that cannot resolve
        raise ConfigError(f"{key}: cannot be resolved ({err})") from err


# conf/predict.yaml
PREDICT_OPTIONS: tuple[Option, ...] = (Option("batch_size", low=1, example=32),)


def check_values(cfg: DictConfig, options: tuple[Option, ...] = OPTIONS) -> None:
    missing = _required(OmegaConf.to_container(cfg, resolve=False))
    if missing:
        raise ConfigError(f"{', '.join(missing)}: required, but not set; add "
                          f"{' '.join(k + '=...' for k in missing)} to the command")
    for option in options:
        value = _value(cfg, option.key)
        if value is _MISSING:
            continue
        problem = option.problem(value)
        if problem is not None:
            raise ConfigError(option.message(value, problem))


def _required(data: object, prefix: str = "") -> list[str]:
    """Keys left at `???` (no default: the user must set them), outside Hydra's own node."""
    if isinstance(data, dict):
        items = [(k, v) for k, v in data.items() if prefix or k != "hydra"]
    elif isinstance(data, list):
        items = list(enumerate(data))
    else:
        return [prefix.rstrip(".")] if data == "???" else []
    return [key for k, v in items for key in _required(v, f"{prefix}{k}.")]


def check_options(cfg: DictConfig) -> None:
    """Everything that needs no data: types, ranges and choices of OPTIONS, option combinations,
    the accelerator, and that the output folder can be written."""
    check_values(cfg, OPTIONS)
    if cfg.get("split") is not None:
        validate_split_options(cfg.split.folds, cfg.split.fold, cfg.split.test_size, cfg.split.val_size)
    check_groups_spec(cfg)
    check_accelerator(cfg)
    check_affinity_device(cfg)
    check_output_folders(cfg)


def check_output_folders(cfg: DictConfig) -> None:
    """paths.output_dir, and the cache and job folders (below it unless set apart), can be written: a read-only
    folder is one line here, not an OSError from the first split or token file."""
    check_writable(cfg.paths.output_dir)
    for key in ("paths.cache_dir", "paths.runs_dir"):
        folder = _value(cfg, key)
        if folder is not _MISSING and folder is not None:
            check_writable(folder, key, f"set {key}=/a/writable/folder")


def check_groups_spec(cfg: DictConfig) -> None:
    groups = _value(cfg, "clustering.groups")
    if groups is _MISSING or groups is None:
        return
    if not isinstance(groups, ListConfig) or not all(isinstance(g, ListConfig) for g in groups):
        raise ConfigError(f"clustering.groups={_show(groups)}: give a list of groups, each a list of label names "
                          "or indices, e.g. clustering.groups=[[0,1],[2,3,4]] (one group of all labels: "
                          "arch=mtl)")
    empty = [i for i, group in enumerate(groups) if len(group) == 0]
    if empty:  # dropped, 3 groups would silently become 2
        kept = OmegaConf.create([g for g in groups if len(g)])
        raise ConfigError(f"clustering.groups={_show(groups)}: group {', '.join(map(str, empty))} "
                          f"{'is' if len(empty) == 1 else 'are'} empty; every group needs at least one label: remove "
                          f"it (clustering.groups={_show(kept)}) or put labels in it")


def _show(value: object) -> str:
    return str(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value).replace(" ", "")


def submitted_to_cluster(cfg: DictConfig) -> bool:
    """A sweep whose jobs the launcher submits to a cluster (hydra/launcher=slurm: submitit): they run on
    its nodes, and each job checks the node's GPUs there (run_job). The login node that submits them
    usually has none, so the sweeper must not refuse `trainer=gpu` for it."""
    from mtlv.launch import is_cluster

    launcher = _value(cfg, "hydra.launcher")
    return str(_value(cfg, "hydra.mode")).endswith("MULTIRUN") and is_cluster(
        launcher if isinstance(launcher, DictConfig) else None)


def check_accelerator(cfg: DictConfig) -> None:
    accelerator = str(_value(cfg, "trainer.accelerator"))
    if accelerator in ("gpu", "cuda") and not submitted_to_cluster(cfg):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"trainer.accelerator={accelerator} (trainer=gpu, trainer=ddp) needs CUDA, and no CUDA "
                              "GPU is available here: use trainer=cpu or trainer=default (it picks what there is), "
                              "or run where CUDA is available")


def check_affinity_device(cfg: DictConfig) -> None:
    """clustering.device (clustering=affinity): auto, or a device this machine has."""
    device = _value(cfg, "clustering.device")
    if device is not _MISSING:
        from mtlv.grouping.affinity import resolve_device

        resolve_device(device)


def check_writable(folder: str | Path, key: str = "paths.output_dir",
                   fix: str = "set MTLV_OUTPUT_DIR=/a/writable/folder or paths.output_dir=/a/writable/folder") -> None:
    """Create `folder` and write a file in it, before the run writes anything there."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".mtlv-write-test-"):
            pass
    except OSError as err:
        raise ConfigError(f"{key}={folder}: cannot write there ({err.strerror or err}); {fix}") from err


# Options whose node Hydra itself types while it composes (the joblib launcher's structured config): a value of
# the wrong type ends composition with Hydra's own multi-line message, before the checks above can run.
TYPED_BY_HYDRA = ("hydra.launcher.",)


def check_command_line(args: list[str]) -> None:
    """Check the command's values of options Hydra types (TYPED_BY_HYDRA) as OPTIONS would, before Hydra
    composes: `hydra.launcher.n_jobs=abc` is then one `error:` line naming what it accepts."""
    options = {o.key: o for o in OPTIONS if o.key.startswith(TYPED_BY_HYDRA)}
    mine = [a for a in args if a.split("=", 1)[0].lstrip("+~") in options and "=" in a]
    if not mine:
        return
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(mine)
    except HydraException:  # the override's own syntax: Hydra says what is wrong with it
        return
    for override in parsed:
        if override.is_sweep_override() or override.is_delete():
            continue
        option, value = options[override.key_or_group], override.value()
        if (problem := option.problem(value)) is not None:
            raise ConfigError(option.message(value, problem))


def command_line_checked(main: Callable) -> Callable:
    """Wraps a @hydra.main entry point: check_command_line on sys.argv first (one `error:` line, exit 2)."""
    import functools
    import sys

    @functools.wraps(main)
    def run(*args, **kwargs):
        try:
            check_command_line(sys.argv[1:])
        except ConfigError as err:
            report_and_exit(err)
        return main(*args, **kwargs)

    return run


class PreflightCallback(Callback):
    """Hydra callback (conf/hydra/default.yaml): check the options before Hydra creates the run
    folder under paths.output_dir, so a bad value or an unwritable folder is one `error:` line.
    Sweeps are checked by the sweeper, once per cell, before any job starts."""

    @entry_point
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        check_options(config)
        _PREFLIGHT.add(_options_text(config))


# The configs PreflightCallback checked in this process (as their unresolved text without `hydra`): the
# job's spec (mtlv/run/spec.py) does not check them again.
_PREFLIGHT: set[str] = set()


def _options_text(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))


def checked_by_preflight(cfg: DictConfig) -> bool:
    return bool(_PREFLIGHT) and _options_text(cfg) in _PREFLIGHT


def check_corpus(cfg: DictConfig, corpus) -> None:
    """The loaded documents can be split as asked: some documents, some labels, each part non-empty."""
    where = f"dataset={cfg.dataset.name}"
    path = _value(cfg, "dataset.path")
    if path is not _MISSING and path is not None:
        where += f" (dataset.path={path})"
    if len(corpus) == 0:
        raise DataError(f"{where} has no documents (only a header, or every text is empty); "
                        "point dataset.path=... at a file with one document per row")
    if corpus.num_labels == 0:
        raise DataError(f"{where} has no labels: no document has any; put labels in the column named by "
                        "dataset.source.label_column (delimited by dataset.source.label_delimiter), or list "
                        "0/1 columns in dataset.source.label_columns=[...]")
    if len(corpus) < MIN_DOCUMENTS:
        raise DataError(f"{where} has {len(corpus)} document(s); training needs at least {MIN_DOCUMENTS} "
                        "(for train, validation and test parts)")
    check_labels_vary(where, corpus)
    split = cfg.get("split")
    if split is None:
        return
    # the ranges first: the part sizes below divide by split.folds (a study loads its data before the jobs'
    # own option checks run)
    validate_split_options(split.folds, split.fold, split.test_size, split.val_size)
    given = split.use_given and split.folds is None and corpus.given_split is not None
    if given:
        n_test = int((corpus.given_split == "test").sum())
        if small := _too_small(*_parts(len(corpus) - n_test, split.val_size), n_test)[1]:
            raise DataError(f"{where}: its own train/test split gives {small}; set split.use_given=false (or add "
                            "documents to the small part)")
        return
    if split.folds is not None:
        if small := _too_small(*_fold_parts(len(corpus), split.folds, split.val_size))[1]:
            most = max((k for k in range(2, int(split.folds))
                        if not _too_small(*_fold_parts(len(corpus), k, split.val_size))[0]), default=None)
            fix = f"use split.folds={most} or fewer" if most else "use split.folds=null"
            raise ConfigError(f"split.folds={split.folds}: {len(corpus)} documents in {split.folds} folds give {small}; "
                              f"{fix}")
        return
    n_test = math.ceil(len(corpus) * split.test_size)
    parts, small = _too_small(*_parts(len(corpus) - n_test, split.val_size), n_test)
    if small:
        fix = ("lower split.test_size or split.val_size (the defaults: 0.2 and 0.15)" if "train" in parts else
               "raise split.val_size" if "validation" in parts else "raise split.test_size")
        raise ConfigError(f"split.test_size={split.test_size}, split.val_size={split.val_size}: {len(corpus)} "
                          f"documents give {small}; {fix}")


def check_labels_vary(where: str, corpus) -> None:
    """A dataset whose every label is the same on every document (on all of them, or on none) has nothing to
    learn or measure: its F1 would be 1.0 or undefined by construction. One label is a valid dataset (a binary
    task, m=1) as long as some documents have it and some do not; a constant label among others that vary is
    trained, and the reports flag it."""
    positives = corpus.labels.sum(axis=0)
    constant = [(name, int(count)) for name, count in zip(corpus.label_names, positives)
                if count in (0, len(corpus))]
    if len(constant) < corpus.num_labels:
        return
    named = ", ".join(f"'{name}' on {'all' if count else 'none'} of them" for name, count in constant)
    raise DataError(f"{where}: every label is the same on all {len(corpus)} documents ({named}): nothing to learn; "
                    "a label needs documents with it and documents without it (for a binary task, give the "
                    "documents without the label too, with an empty label cell)")


def _parts(pool: int, val_size: float) -> tuple[int, int]:
    """(train, validation) sizes of a training pool."""
    val = math.ceil(pool * val_size)
    return pool - val, val


def _fold_parts(n: int, folds: int, val_size: float) -> tuple[int, int, int]:
    """(train, validation, test) sizes of the smallest fold (stratified folds may differ by a document or so)."""
    test = n // folds
    return (*_parts(n - test, val_size), test)


def _too_small(train: int, val: int, test: int) -> tuple[list[str], str]:
    """The parts with fewer than MIN_PARTS documents, and a text naming them and the minimums ('' if none)."""
    sizes = {"train": train, "validation": val, "test": test}
    small = [part for part in sizes if sizes[part] < MIN_PARTS[part]]
    if not small:
        return [], ""
    minimums = ", ".join(f"{n} {part}" for part, n in MIN_PARTS.items())
    return small, (f"{' and '.join(f'{sizes[part]} {part}' for part in small)} document(s) (of {train} train, {val} "
                   f"validation, {test} test); every part needs at least {minimums} documents")


def check_config(cfg: DictConfig, num_labels: int, say_ignored: bool = True) -> None:
    """Options that depend on the encoder or the number of labels (after check_options). `say_ignored`: warn
    of clustering options the architecture does not use (a study's plan counts them as folded cells)."""
    check_max_length(cfg)
    check_grouping_options(cfg, num_labels, say_ignored)


def check_max_length(cfg: DictConfig) -> None:
    from mtlv.models.encoder import model_max_length

    wanted = int(cfg.model.max_length)
    allowed = model_max_length(cfg.model.name_or_path, cfg.model.module.random_init,
                               bool(cfg.model.get("trust_remote_code", False)))
    if not 8 <= wanted <= allowed:
        # named by the model option (model=tiny), not the tokenizer's path: tiny is a random BERT with MiniLM's
        # tokenizer, and "packaged:minilm accepts 8..128" read as if MiniLM itself took only 128 tokens. Not
        # clamped: a shorter input than asked (e.g. experiment=ohsumed_paper's 256) changes what is measured.
        source = (f"its random_init.max_position_embeddings={allowed}" if cfg.model.module.get("random_init")
                  else f"the position embeddings of {cfg.model.name_or_path}")
        raise ConfigError(f"model.max_length={wanted}: model={cfg.model.name} takes 8 to {allowed} tokens "
                          f"({source}); add model.max_length={min(max(wanted, 8), allowed)} to the command, or "
                          "choose a model that takes longer inputs")


def check_grouping_options(cfg: DictConfig, num_labels: int, say_ignored: bool = True) -> None:
    from mtlv.grouping.base import NoGrouping, choices_text, method_from_config

    arch, clustering = cfg.arch, cfg.clustering
    method = method_from_config(clustering)
    if arch.grouping == "clustering":
        if isinstance(method, NoGrouping):
            raise ConfigError(f"arch={arch.name} trains task groups, but clustering=none: choose {choices_text()}")
        method.check(num_labels)
    else:
        ignored = [f"clustering.{key}={clustering[key]}" for key in ("k", "groups") if clustering.get(key)]
        # in a sweep's job the sweeper has said it once for all its cells (mtlv_sweeper: cells folded)
        if (not isinstance(method, NoGrouping) or ignored) and say_ignored and not in_sweep_job():
            what = ", ".join(ignored) or f"clustering={clustering.method}"
            fixed = "one group of all labels" if arch.grouping == "all" else "one group per label"
            log.warning("%s is ignored: arch=%s always uses %s", what, arch.name, fixed)
    if arch.placement == "heads" and cfg.get("group_index") is not None:
        log.warning("group_index=%s is ignored: arch=%s trains one model for all groups", cfg.group_index, arch.name)
