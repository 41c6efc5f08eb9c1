"""A study config (conf/study/*.yaml) and the command's own overrides -> the Hydra multiruns that run it.

A study names datasets, encoders, seeds, folds, a training budget, grids of architectures and groupings,
and classical baselines. Each (dataset, grid) becomes one `python -m mtlv.train -m ...` sweep (STL/GMTL
cells expand into their group jobs there), and the baselines one `python -m mtlv.baseline -m ...` sweep.
The command's own overrides (`model=bert`, `trainer.max_epochs=1`, `hydra/launcher=parallel`, ...) go to
every sweep and replace the study's value of the same key.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

from omegaconf import DictConfig, ListConfig, OmegaConf

from mtlv.errors import ConfigError

BASELINE = "baseline"
ARCHS = ("stl", "mtl", "gmhl", "gmtl")
TRAIN_MODULE, BASELINE_MODULE = "mtlv.train", "mtlv.baseline"
PLAIN = re.compile(r"[A-Za-z0-9_./+@-]+")   # a string Hydra reads unquoted as itself (ASCII only)


def key_of(override: str) -> str:
    """'+callbacks.fault={...}' -> 'callbacks.fault'; 'hydra/launcher=parallel' -> 'hydra/launcher'."""
    return override.split("=", 1)[0].lstrip("+~")


def top_of(override: str) -> str:
    return key_of(override).split(".")[0].split("/")[0]


def is_study_override(override: str) -> bool:
    return top_of(override) == "study"


@dataclass(frozen=True)
class Sweep:
    """One Hydra multirun of the study: `python -m <module> -m <overrides>`."""

    dataset: str                   # the dataset config's name (openi, csv, ...)
    grid: str                      # the study grid it runs (or 'baselines')
    module: str                    # mtlv.train | mtlv.baseline
    overrides: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())   # what the plan changed (dropped values) and why

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.grid}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module, "-m", *self.overrides]

    def with_overrides(self, overrides: list[str], note: str | None = None) -> "Sweep":
        return Sweep(self.dataset, self.grid, self.module, tuple(overrides),
                     self.notes + ((note,) if note else ()))


def value_text(value) -> str:
    """A config value in Hydra's override syntax (strings quoted when they need it)."""
    if isinstance(value, (list, tuple, ListConfig)):
        return "[" + ",".join(value_text(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value)
    if isinstance(value, str) and not PLAIN.fullmatch(text):
        # Hydra's own quoting (a backslash is escaped only before a quote): a path with `,` `=` `'` or
        # non-ASCII letters reads back as itself; `${` is escaped so that it stays text, not an interpolation
        from hydra.core.override_parser.types import Quote, QuotedString

        return QuotedString(text=text.replace("${", "\\${"), quote=Quote.single).with_quotes()
    return text


def grid_overrides(grid: DictConfig | dict) -> list[str]:
    """{'clustering': [a, b], 'clustering.k': [3, auto]} -> ['clustering=a,b', 'clustering.k=3,auto']: a list is
    swept; `clustering.groups` (given groups: a list of lists) is one value."""
    out = []
    for key, value in (grid.items() if isinstance(grid, dict) else OmegaConf.to_container(grid).items()):
        if isinstance(value, (list, tuple)) and key != "clustering.groups":
            if not value:
                raise ConfigError(f"study grid option {key}: an empty list; give at least one value")
            out.append(f"{key}={','.join(value_text(v) for v in value)}")
        else:
            out.append(f"{key}={value_text(value)}")
    return out


def merge(study: list[str], user: list[str]) -> list[str]:
    """The study's overrides, except those whose key the command set itself (Hydra rejects a key given
    twice, and the command's own value is the one meant), then the command's."""
    keys = {key_of(o) for o in user}
    return [o for o in study if key_of(o) not in keys] + list(user)


def applies(override: str, clusters: bool, baseline: bool) -> bool:
    """Whether one of the command's overrides goes to a sweep: `baseline.*` only to the baselines;
    `clustering=...` and `clustering.*` only to sweeps whose grid clusters (the others have clustering=none,
    whose node lacks most of those keys; their architectures would not use them anyway)."""
    top = top_of(override)
    if top == BASELINE:
        return baseline
    if top == "clustering":
        return clusters and not baseline
    return True


def archs_of(grid: dict) -> list[str]:
    archs = grid.get("arch")
    if archs is None:
        raise ConfigError(f"study grid {grid}: name its architectures, e.g. arch: [gmhl, gmtl]")
    archs = list(archs) if isinstance(archs, (list, tuple)) else [archs]
    unknown = [a for a in archs if a not in ARCHS]
    if unknown:
        raise ConfigError(f"study grid arch={unknown}: unknown architecture(s); use {', '.join(ARCHS)}")
    return archs


def _names(study: DictConfig, key: str) -> list[str] | None:
    """A study option that lists names (null: all), as a list; a bare word is refused rather than read as its
    letters (`list("mtl")`)."""
    value = study.get(key)
    if value is None:
        return None
    if not isinstance(value, (list, tuple, ListConfig)):
        raise ConfigError(f"study.{key}={value}: give a list, e.g. study.{key}=[{value}] (or null for all)")
    return [str(v) for v in value]


def _unknown(key: str, given: list[str], valid: list[str], what: str) -> None:
    """One error naming the values of `study.<key>` that match nothing (a typo there would silently drop a
    part of the study) and the valid ones."""
    unknown = [v for v in given if v not in valid]
    if unknown:
        raise ConfigError(f"study.{key}={value_text(given)}: {', '.join(unknown)} "
                          f"{'is' if len(unknown) == 1 else 'are'} not {what}; use {', '.join(valid) or 'none'}")


def check_study(cfg: DictConfig) -> None:
    """Before anything is planned: the study's own options (check_study_options), and that the folders the plan
    and the jobs write (caches, job folders, the study's folder) can be written, so that a read-only
    paths.output_dir is one error line, not an OSError from the first cache file."""
    from mtlv.layout import check_output_folders

    check_study_options(cfg.study)
    check_output_folders(cfg)


def check_study_options(study: DictConfig) -> None:
    """study.*: a value that selects nothing is an error naming the valid ones, not a part of the study silently
    left out."""
    from mtlv.options import Option

    grids = OmegaConf.to_container(study.grids) or {}
    if (run_grids := _names(study, "run_grids")) is not None:
        _unknown("run_grids", run_grids, [str(g) for g in grids], f"a grid of study {study.name}")
    if (archs := _names(study, "archs")) is not None:
        _unknown("archs", archs, [*ARCHS, BASELINE], "an architecture (or baseline)")
    if (only := _names(study, "only_datasets")) is not None:
        entries = OmegaConf.to_container(study.datasets) if study.get("datasets") else []
        named = [str(d["name"]) for d in entries if isinstance(d, dict) and "name" in d]
        if not named:
            raise ConfigError(f"study.only_datasets={value_text(only)}: study {study.name} names no datasets (it "
                              "studies the command's dataset=...); leave study.only_datasets out")
        _unknown("only_datasets", only, named, f"a dataset of study {study.name}")
    # split.folds' own rule (validate_split_options), as a study option: checked before any data is loaded
    folds = Option("study.folds", low=2, null=True, example=5)
    if (problem := folds.problem(study.get("folds"))) is not None:
        raise ConfigError(folds.message(study.get("folds"), problem) + ": cross-validation needs at least 2 folds; "
                          "null keeps the dataset's own protocol")


def selected(study: DictConfig, family: str) -> bool:
    """`study.archs`: the architectures (and `baseline`) to run, null for all."""
    return study.get("archs") is None or family in list(study.archs)


def left_out(study: DictConfig) -> list[str]:
    """The architectures (and `baseline`) of the grids to run that `study.archs` leaves out, for the plan to say."""
    run_grids = study.get("run_grids")
    named = [a for grid_name, grid in (OmegaConf.to_container(study.grids) or {}).items()
             if run_grids is None or grid_name in set(run_grids) for a in archs_of(dict(grid))]
    named += [BASELINE] if study.get("baselines") else []
    return [a for a in dict.fromkeys(named) if not selected(study, a)]


def datasets(study: DictConfig, user: list[str]) -> list[tuple[str, str | None, bool]]:
    """(dataset, experiment or None, optional) per dataset of the study. A command that names its own dataset
    (`dataset=csv dataset.path=...`) studies that one, with the study's experiment for it if it has one."""
    named = {}
    for entry in OmegaConf.to_container(study.datasets) if study.get("datasets") else []:
        if not isinstance(entry, dict) or "name" not in entry:
            raise ConfigError(f"study.datasets: {entry!r}: give each dataset as {{name: openi, experiment: openi_paper}} "
                              "(experiment may be null)")
        named[str(entry["name"])] = entry.get("experiment")
    optional = set(study.get("optional") or [])
    given = [o.split("=", 1)[1] for o in user if key_of(o) == "dataset"]
    if given and named and study.get("only_datasets") is not None:  # the command's dataset would silently win
        raise ConfigError(f"study.only_datasets={value_text(list(study.only_datasets))} and dataset={given[-1]}: the "
                          "command's dataset replaces the study's datasets; give one of the two")
    if given or not named:
        return [(given[-1] if given else "", named.get(given[-1]) if given else None, False)]
    if (only := study.get("only_datasets")) is not None:  # each a dataset of the study: check_study
        named = {k: v for k, v in named.items() if k in set(only)}
    return [(name, experiment, name in optional) for name, experiment in named.items()]


def common_overrides(study: DictConfig, dataset: str, experiment: str | None, folds: int | None) -> list[str]:
    """What every sweep of one dataset sets: experiment, dataset, folds, seeds, models, the budget."""
    out = [f"experiment={experiment}"] if experiment else []
    out += [f"dataset={dataset}"] if dataset else []
    if study.get("folds") is not None:
        out.append(f"split.folds={int(study.folds)}")
    if folds:
        out.append("split.fold=" + ",".join(str(i) for i in range(int(folds))))
    seeds = study.get("seeds")
    if seeds:
        out.append("seed=" + ",".join(str(int(s)) for s in seeds))
    return out + list(study.get("budget") or [])


def sweeps_for(study: DictConfig, dataset: str, experiment: str | None, folds: int | None,
               user: list[str]) -> list[Sweep]:
    """The sweeps of one dataset: the baselines first (seconds each: early anchors), then each grid in order."""
    common = common_overrides(study, dataset, experiment, folds)
    name = dataset or "dataset"
    models = [f"model={','.join(str(m) for m in study.models)}"] if study.get("models") else []
    out = []
    if study.get("baselines") and selected(study, BASELINE):
        grid = grid_overrides(study.baselines)
        mine = [o for o in user if applies(o, False, True)]
        out.append(Sweep(name, "baselines", BASELINE_MODULE, tuple(merge(common + grid, mine))))
    run_grids = study.get("run_grids")
    for grid_name, grid in (OmegaConf.to_container(study.grids) or {}).items():
        if run_grids is not None and grid_name not in set(run_grids):
            continue
        grid = dict(grid)
        archs = [a for a in archs_of(grid) if selected(study, a)]
        if not archs:
            continue
        grid["arch"] = archs
        clusters = "clustering" in grid or any(a in ("gmhl", "gmtl") for a in archs)
        mine = [o for o in user if applies(o, clusters, False)]
        out.append(Sweep(name, str(grid_name), TRAIN_MODULE, tuple(merge(common + models + grid_overrides(grid), mine))))
    return out
