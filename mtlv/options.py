"""The option registry: every number and choice a user may set on the command line (`OPTIONS`), each with
its type, range and choices, and `check_values`, which holds a composed config to them. A choice list is
declared once, by the code that implements the option (`_declared`), and read from there; the checks that
need more than one value or the loaded data live with the code that owns them (mtlv/checks.py lists them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from mtlv.data.checks import MIN_DOCUMENTS
from mtlv.errors import ConfigError


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
    Option("model.module.pos_weight", str, choices=_declared("mtlv.models.options.POS_WEIGHTS")),
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
    Option("trainer.max_steps", low=1, words=(-1,), example=500),
    Option("trainer.accumulate_grad_batches", low=1, example=1),
    Option("trainer.gradient_clip_val", float, low=0, null=True, example=1.0),
    Option("trainer.log_every_n_steps", low=1, example=10),
    Option("trainer.num_sanity_val_steps", low=-1, example=0),
    # Lightning's "warn": deterministic where CUDA has such kernels, a warning where it has none
    Option("trainer.deterministic", bool, words=("warn",), null=True),
    # declared here for mtlv/run/progress.py (it imports Lightning; this registry sits below it): `choices`
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
    # declared here for mtlv/baselines/classical.py (this registry sits below it): `choices`
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
MISSING = object()  # a key the composed config lacks (config_value)


def choices(key: str) -> tuple:
    """The choices of OPTIONS' `key`: for code above this floor that implements an option whose list is declared
    here (the progress bar's style, the baseline's features and classifier)."""
    option = next(o for o in OPTIONS if o.key == key)
    return tuple(option.choices() if callable(option.choices) else option.choices)



def config_value(cfg: DictConfig, key: str) -> object:
    """`key`'s value in `cfg` (MISSING where the composed config lacks it), or a ConfigError naming the key
    when an interpolation in it cannot resolve."""
    try:
        return OmegaConf.select(cfg, key, default=MISSING, throw_on_missing=False)
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
        value = config_value(cfg, option.key)
        if value is MISSING:
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
