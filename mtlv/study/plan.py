"""The plan of a study: every cell of its sweeps, composed as the sweep will compose it, with its jobs, the
model each job trains (reuse across cells), and what is finished already.

Options an architecture does not use fold away (`prepare.distinct_cells`, as in the sweeper); a value of a
swept option that no cell of its sweep can run on this dataset (`clustering=kmedoids_desc` on a CSV without
label descriptions, a k above the number of labels) is dropped from the sweep with one note saying why, so
that a study never launches jobs that are known to fail. The groupings are computed here (cached, and saved
in the cell folders, so the sweeps only read them): GMTL's number of jobs and which of its models other
cells already train depend on them.
"""
from __future__ import annotations

import copy
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, open_dict

from mtlv.config import compose
from mtlv.errors import ConfigError, user_error
from mtlv.study.spec import BASELINE_MODULE, Sweep, key_of

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One job of the plan: a model to train (or a baseline to fit), in its folder."""

    sweep: int                    # index into Plan.sweeps
    folder: Path                  # the job folder (result.json there marks it finished)
    cell: Path                    # its cell folder (= folder for a baseline)
    title: str                    # e.g. 'gmtl-minilm-description-k4-fold0 group 2 (Cardiomegaly, Nodule)'
    arch: str                     # stl | mtl | gmhl | gmtl | baseline
    model_key: str | None         # equal for two jobs that train the same model (None: a baseline)
    finished: bool                # finished before this run of the study
    reuses: bool = False          # another job (finished or earlier in the plan) trains its model
    work: dict = field(default_factory=dict)   # sizes for the time estimate (estimate.job_seconds)
    speed_key: str = ""           # jobs with equal keys train at the same speed (estimate.speed_key)
    overrides: tuple[str, ...] = ()   # its cell's overrides, one value each (the sweep's combination)

    @property
    def trains(self) -> bool:
        """Whether this job trains a model in this run (not finished, not reusing another job's)."""
        return not self.finished and not self.reuses

    def status(self) -> str:
        if (self.folder / "result.json").exists():
            return "done"
        return "failed" if (self.folder / "failed.json").exists() else "todo"


@dataclass
class Plan:
    sweeps: list[Sweep]
    jobs: list[Job]
    folded: int = 0                                     # cells run as another (unused options)
    notes: list[str] = field(default_factory=list)     # dropped values, skipped datasets
    dropped: list[dict] = field(default_factory=list)  # cells never launched: {sweep, cell, error}
    configs: dict[int, DictConfig] = field(default_factory=dict)  # one composed cell config per sweep
    speed_configs: dict[str, DictConfig] = field(default_factory=dict)  # speed class -> a config that trains it

    @property
    def cells(self) -> list[Path]:
        return list(dict.fromkeys(j.cell for j in self.jobs))

    def jobs_of(self, sweep: int) -> list[Job]:
        return [j for j in self.jobs if j.sweep == sweep]

    def models(self) -> int:
        """Distinct models (and baselines) the study's results need."""
        return len({j.model_key or str(j.folder) for j in self.jobs})

    def to_train(self) -> list[Job]:
        return [j for j in self.jobs if j.trains]


def parse(overrides: tuple[str, ...] | list[str]):
    return OverridesParser.create().parse_overrides(list(overrides))


def combos(sweep: Sweep) -> list[list[str]]:
    """The sweep's cells as Hydra's basic sweeper expands them (one override list each)."""
    return [list(c) for batch in BasicSweeper.split_arguments(parse(sweep.overrides), None) for c in batch]


def compose_cell(sweep: Sweep, combo: list[str], cache: dict | None = None) -> DictConfig:
    """A cell's config; an override Hydra cannot apply (a study grid's typo) stops the plan, naming it.

    Composing costs ~0.5 s (Hydra reads and merges every YAML file again; planning a 60-cell grid spent most
    of its non-training time here). The cells of a sweep differ mostly in plain values (seed, split.fold,
    clustering.k): with a `cache`, a cell whose config groups and option keys match an earlier cell's is that
    cell's config with those values set, as Hydra sets them (OmegaConf.update, merge=True)."""
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    if cache is not None and "groups" not in cache:  # the config groups, known from the first composed cell
        cfg = compose_cell(sweep, combo)
        cache["groups"] = set(cfg.hydra.runtime.choices.keys()) if "hydra" in cfg else set()
    parsed = parse(combo)
    values = [o for o in parsed if _plain_value(o, cache)]
    key = (sweep.module, tuple(o.input_line for o in parsed if o not in values), tuple(o.key_or_group for o in values))
    if cache is not None and key in cache:
        cfg = copy.deepcopy(cache[key])
        with open_dict(cfg):
            for override in values:
                OmegaConf.update(cfg, override.key_or_group, override.value(), merge=True)
            if "hydra" in cfg:
                cfg.hydra.overrides.task = list(combo)
        return cfg
    try:
        cfg = compose(combo, config_name="baseline" if sweep.module == BASELINE_MODULE else "train",
                      return_hydra=True)
    except HydraException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"study sweep {sweep.name}: {first} (in: {' '.join(combo)})") from None
    if cache is not None:
        cache[key] = copy.deepcopy(cfg)
    return cfg


def _plain_value(override, cache: dict | None) -> bool:
    """A `key=value` override of an option (not a config group, not +/~/++): safe to set without composing."""
    from hydra.core.override_parser.types import OverrideType

    if cache is None or override.type != OverrideType.CHANGE or override.package is not None:
        return False
    return override.key_or_group not in cache.get("groups", ()) and "/" not in override.key_or_group


def _values(combo: list[str]) -> dict[str, str]:
    return {key_of(o): o.split("=", 1)[1] for o in combo}


def drop_unrunnable(sweep: Sweep, cells: list[tuple[list[str], DictConfig | None, str | None]]) -> Sweep | None:
    """The sweep without the values of its swept options that no cell can run (every cell with that value
    failed its preparation with a user error); None when nothing of it can run."""
    failed = [(c, err) for c, _, err in cells if err]
    if not failed:
        return sweep
    swept = [o for o in parse(sweep.overrides) if o.is_sweep_override()]
    overrides, notes = list(sweep.overrides), []
    for override in swept:
        key = override.get_key_element()
        values = [str(v) for v in override.sweep_string_iterator()]
        bad = {}
        for value in values:
            rows = [(c, err) for c, _, err in cells if _values(c).get(key) == value]
            if rows and all(err for _, err in rows):
                bad[value] = rows[0][1]
        if not bad:
            continue
        keep = [v for v in values if v not in bad]
        for value, err in bad.items():
            notes.append(f"{sweep.name}: {key}={value} dropped: {err}")
        if not keep:
            return None
        overrides = [f"{key}={','.join(keep)}" if key_of(o) == key else o for o in overrides]
    out = sweep.with_overrides(overrides)
    return Sweep(out.dataset, out.grid, out.module, out.overrides, tuple(notes)) if notes else out


class PlanRefusal(ConfigError):
    """An option no cell can train with, knowable while planning (e.g. head_lrs of the wrong length for the
    groups found): the study stops before anything trains, instead of dropping the cells."""


def make_plan(sweeps: list[Sweep], say=None, every: int = 10) -> Plan:
    """Compose every cell of every sweep, drop what cannot run, compute groupings, and list the jobs. Says
    how far it got every `every` cells of a big sweep, and before each grouping that trains an encoder."""
    import time

    from mtlv.run.prepare import distinct_cells

    say = say or (lambda text: print(text, flush=True))
    announced: set[str] = set()  # groupings that train an encoder, said once
    plan = Plan([], [])
    seen: dict[str, Job] = {}  # model key -> the first job that trains it (or finished it)
    for sweep in sweeps:
        cells, composed = [], {}
        expanded = combos(sweep)
        start = time.time()
        if len(expanded) > every:
            say(f"[study] planning {sweep.name}: composing {len(expanded)} cells")
        for n, combo in enumerate(expanded, 1):
            cfg = compose_cell(sweep, combo, composed)
            if (what := trains_for_grouping(cfg)) is not None and what not in announced:
                announced.add(what)
                say(f"[study] planning {sweep.name}: cell {n}/{len(expanded)}: {what}")
            try:
                prepared = prepare(cfg)
                cells.append((combo, cfg, None, prepared))
            except PlanRefusal:
                raise
            except Exception as err:  # noqa: BLE001 - only a user error is a planned outcome
                if user_error(err) is None:
                    raise
                cells.append((combo, None, str(user_error(err)), None))
            if len(expanded) > every and n % every == 0 and n < len(expanded):
                say(f"[study] planning {sweep.name}: {n}/{len(expanded)} cells ({time.time() - start:.0f}s)")
        kept = drop_unrunnable(sweep, [(c, cfg, err) for c, cfg, err, _ in cells])
        if kept is None:
            plan.notes.append(f"{sweep.name}: skipped, no cell can run here: {next(e for *_, e, _ in cells if e)}")
            plan.dropped += [{"sweep": sweep.name, "cell": " ".join(swept_values(sweep, c)), "error": e}
                             for c, _, e, _ in cells if e]
            continue
        plan.notes += list(kept.notes)
        if kept.overrides != sweep.overrides:  # some cells dropped: the rest as the sweep will compose them
            allowed = {tuple(c) for c in combos(kept)}
            plan.dropped += [{"sweep": sweep.name, "cell": " ".join(swept_values(sweep, c)), "error": e}
                             for c, _, e, _ in cells if tuple(c) not in allowed and e]
            cells = [c for c in cells if tuple(c[0]) in allowed]
        errors = [(c, err) for c, _, err, _ in cells if err]
        if errors:  # cells that cannot run, among others that can: never launched, so the sweep splits
            plan.notes += cells_note(kept, errors)
            plan.dropped += [{"sweep": kept.name, "cell": " ".join(swept_values(kept, c)), "error": e}
                             for c, e in errors]
        good = [(c, cfg, prep) for c, cfg, err, prep in cells if not err]
        if not good:
            plan.notes.append(f"{kept.name}: skipped, no cell can run here")
            continue
        parts = split_sweep(kept, [c for c, _, _ in good]) if errors else [kept]
        _, configs, folded = distinct_cells([c for c, _, _ in good], [cfg for _, cfg, _ in good])
        plan.folded += folded
        first = len(plan.sweeps)
        plan.sweeps += parts
        part_of = {tuple(c): first + i for i, part in enumerate(parts) for c in combos(part)}
        wanted = {id(cfg) for cfg in configs}
        for combo, cfg, prepared in good:
            if id(cfg) not in wanted:
                continue
            index = part_of[tuple(combo)]
            plan.configs.setdefault(index, cfg)
            spec, jobs = prepared
            for job in jobs:
                job.sweep, job.overrides = index, tuple(combo)
                if job.model_key is not None and not job.finished:
                    first_job = seen.get(job.model_key)
                    job.reuses = first_job is not None or model_trained(spec, job)
                if job.model_key is not None:
                    seen.setdefault(job.model_key, job)
                if job.trains and job.model_key is not None:
                    plan.speed_configs.setdefault(job.speed_key, cfg)
                plan.jobs.append(job)
    return plan


def trains_for_grouping(cfg: DictConfig) -> str | None:
    """What a cell's grouping costs when it trains an encoder (gradient affinity) and is not cached yet."""
    if cfg.get("task_name") == "baseline" or cfg.arch.get("grouping") != "clustering":
        return None
    clustering = cfg.get("clustering") or {}
    if clustering.get("method") != "affinity":
        return None
    return (f"the gradient affinity of seed {cfg.seed}"
            + (f", fold {cfg.split.fold}" if cfg.split.get("folds") else "")
            + f" trains {cfg.model.name} for {clustering.get('steps')} steps (once per fold and seed; the sweep "
              "reuses it)")


def swept_values(sweep: Sweep, combo: list[str]) -> list[str]:
    """The combo's overrides of the sweep's swept options (what tells its cells apart)."""
    swept = {o.get_key_element() for o in parse(sweep.overrides) if o.is_sweep_override()}
    return [o for o in combo if key_of(o) in swept]


def cells_note(sweep: Sweep, errors: list[tuple[list[str], str]], shown: int = 3) -> list[str]:
    """One note per distinct error: which cells it drops (a few named, the rest counted)."""
    by_error: dict[str, list[str]] = {}
    for combo, err in errors:
        by_error.setdefault(err, []).append(" ".join(swept_values(sweep, combo)) or "its only cell")
    notes = []
    for err, cells in by_error.items():
        more = f" and {len(cells) - shown} more" if len(cells) > shown else ""
        notes.append(f"{sweep.name}: {len(cells)} cell(s) dropped, never launched ({'; '.join(cells[:shown])}{more}): "
                     f"{err}")
    return notes


def split_sweep(sweep: Sweep, allowed: list[list[str]]) -> list[Sweep]:
    """The sweep as the fewest Hydra multiruns (each a product of its swept values) that run exactly the
    `allowed` cells: a multirun runs every combination, so cells the plan drops need a split to stay out."""
    swept = [o for o in parse(sweep.overrides) if o.is_sweep_override()]
    keys = [o.get_key_element() for o in swept]
    values = [[str(v) for v in o.sweep_string_iterator()] for o in swept]
    cells = frozenset(tuple(_values(c)[k] for k in keys) for c in allowed)
    memo: dict = {}

    def boxes(cells: frozenset) -> list[tuple[tuple[str, ...], ...]]:
        if cells in memo:
            return memo[cells]
        axes = tuple(tuple(v for v in values[i] if any(c[i] == v for c in cells)) for i in range(len(keys)))
        if math.prod(len(a) for a in axes) == len(cells):
            memo[cells] = [axes]
            return memo[cells]
        best = None
        for i, axis in enumerate(axes):
            if len(axis) < 2:
                continue
            parts = [box for v in axis for box in boxes(frozenset(c for c in cells if c[i] == v))]
            if best is None or len(parts) < len(best):
                best = parts
        memo[cells] = best
        return best

    found = boxes(cells)
    out = []
    for n, axes in enumerate(found, 1):
        chosen = dict(zip(keys, axes))
        overrides = [f"{key_of(o)}={','.join(chosen[key_of(o)])}" if key_of(o) in chosen else o
                     for o in sweep.overrides]
        grid = sweep.grid if len(found) == 1 else f"{sweep.grid}.{n}"
        out.append(Sweep(sweep.dataset, grid, sweep.module, tuple(overrides), sweep.notes if n == 1 else ()))
    return out


def model_trained(spec, job: Job) -> bool:
    """Whether another finished job already trained `job`'s model (reuse_models): it will be reused. `spec`:
    the JobSpec of its cell."""
    from mtlv.layout import JobLayout
    from mtlv.run.reuse import trained_source

    return spec.reuses and trained_source(spec.registry, job.model_key, JobLayout(job.folder),
                                          spec.save_weights) is not None


def prepare(cfg: DictConfig) -> tuple[object, list[Job]]:
    """The JobSpec of one composed cell (resolved once: its checks run here) and its jobs (computing its
    grouping, as the sweep would), each marked finished or not. A baseline cell has no JobSpec (None)."""
    if cfg.get("task_name") == "baseline":
        return None, [baseline_job(cfg)]
    from mtlv.data.load import load_corpus
    from mtlv.data.splits import load_or_make_split
    from mtlv.models.module import check_head_options
    from mtlv.run.cell import cell_grouping, finished_result
    from mtlv.run.cost import speed_key, work_of
    from mtlv.run.spec import JobSpec

    spec = JobSpec.resolve(cfg, say_ignored=False)  # the plan says how many cells fold
    corpus = load_corpus(cfg)
    cell = spec.cell
    grouping = cell_grouping(spec, corpus)
    placement = spec.arch["placement"]
    indices = [None] if placement == "heads" else list(range(grouping.num_groups))
    heads = grouping.num_groups if placement == "heads" else 1  # heads of each of its models
    try:
        module = spec.config["model"]["module"]
        check_head_options(heads, str(module.get("loss_reduction", "sum")), module.get("head_weights"),
                           module.get("head_lrs"))
    except ConfigError as err:
        raise PlanRefusal(f"{cell.run_name} ({heads} head{'s' if heads != 1 else ''} per model): {err}") from None
    keys, models = spec.job_keys(indices), spec.model_keys(grouping, indices)
    split = load_or_make_split(corpus, spec.cache_dir, seed=spec.seed, **spec.split)
    work, speed = work_of(spec.config, split), speed_key(spec.config, spec.launch.torch_threads())
    jobs = []
    for index, key, model in zip(indices, keys, models):
        layout = cell.job(index)
        cols, _ = grouping.job_labels(index)
        names = [corpus.label_names[j] for j in cols]
        shown = ", ".join(names[:3]) + (f", +{len(names) - 3}" if len(names) > 3 else "")
        title = cell.run_name + (f" group {index} ({shown})" if index is not None else "")
        finished = finished_result(spec, layout, key) is not None
        jobs.append(Job(0, layout.folder, cell.folder, title, str(spec.arch["name"]), model, finished,
                        work=work, speed_key=speed))
    return spec, jobs


def baseline_job(cfg: DictConfig) -> Job:
    from mtlv.baselines.job import BaselineSpec

    spec = BaselineSpec.resolve(cfg)
    folder = spec.job.folder
    return Job(0, folder, folder, spec.run_name, "baseline", None, spec.finished(), speed_key="baseline")


def summary(plan: Plan) -> Counter:
    return Counter(j.arch for j in plan.jobs)

