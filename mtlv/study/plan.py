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

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from mtlv.config import compose
from mtlv.errors import ConfigError, user_error
from mtlv.io import read_json, stable_hash
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


def compose_cell(sweep: Sweep, combo: list[str]) -> DictConfig:
    """A cell's config; an override Hydra cannot apply (a study grid's typo) stops the plan, naming it."""
    from hydra.errors import HydraException

    try:
        return compose(combo, config_name="baseline" if sweep.module == BASELINE_MODULE else "train",
                       return_hydra=True)
    except HydraException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"study sweep {sweep.name}: {first} (in: {' '.join(combo)})") from None


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


def make_plan(sweeps: list[Sweep], say=print) -> Plan:
    """Compose every cell of every sweep, drop what cannot run, compute groupings, and list the jobs."""
    from mtlv.run.prepare import distinct_cells

    plan = Plan([], [])
    seen: dict[str, Job] = {}  # model key -> the first job that trains it (or finished it)
    for sweep in sweeps:
        cells = []
        expanded = combos(sweep)
        if len(expanded) > 20:
            say(f"[study] planning {sweep.name}: composing {len(expanded)} cells")
        for combo in expanded:
            cfg = compose_cell(sweep, combo)
            try:
                prepared = prepare(cfg)
                cells.append((combo, cfg, None, prepared))
            except Exception as err:  # noqa: BLE001 - only a user error is a planned outcome
                if user_error(err) is None:
                    raise
                cells.append((combo, None, str(user_error(err)), None))
        kept = drop_unrunnable(sweep, [(c, cfg, err) for c, cfg, err, _ in cells])
        if kept is None:
            plan.notes.append(f"{sweep.name}: skipped, no cell can run here: {next(e for *_, e, _ in cells if e)}")
            continue
        plan.notes += list(kept.notes)
        if kept.overrides != sweep.overrides:  # some cells dropped: the rest as the sweep will compose them
            allowed = {tuple(c) for c in combos(kept)}
            cells = [c for c in cells if tuple(c[0]) in allowed]
        errors = [(c, err) for c, _, err, _ in cells if err]
        for combo, err in errors:  # left in the sweep: it reports them as failed jobs
            plan.notes.append(f"{kept.name}: {' '.join(combo)} cannot run: {err}")
        good = [(c, cfg, prep) for c, cfg, err, prep in cells if not err]
        _, configs, folded = distinct_cells([c for c, _, _ in good], [cfg for _, cfg, _ in good])
        plan.folded += folded
        index = len(plan.sweeps)
        plan.sweeps.append(kept)
        wanted = {id(cfg) for cfg in configs}
        for combo, cfg, prepared in good:
            if id(cfg) not in wanted:
                continue
            plan.configs.setdefault(index, cfg)
            for job in prepared:
                job.sweep, job.overrides = index, tuple(combo)
                if job.model_key is not None and not job.finished:
                    first = seen.get(job.model_key)
                    job.reuses = first is not None or model_trained(cfg, job)
                if job.model_key is not None:
                    seen.setdefault(job.model_key, job)
                if job.trains and job.model_key is not None:
                    plan.speed_configs.setdefault(job.speed_key, cfg)
                plan.jobs.append(job)
    return plan


def model_trained(cfg: DictConfig, job: Job) -> bool:
    """Whether another finished job already trained `job`'s model (reuse_models): it will be reused."""
    from mtlv.run.layout import JobLayout
    from mtlv.run.reuse import trained_source

    return trained_source(cfg, job.model_key, JobLayout(job.folder), bool(cfg.eval.save_weights)) is not None


def prepare(cfg: DictConfig) -> list[Job]:
    """The jobs of one composed cell (computing its grouping, as the sweep would), each marked finished or not."""
    if cfg.get("task_name") == "baseline":
        return [baseline_job(cfg)]
    from mtlv.checks import check_config, check_options
    from mtlv.run.cell import cell_grouping, finished_result, job_keys, load_corpus, open_cell
    from mtlv.run.reuse import job_model_keys
    from mtlv.data.splits import load_or_make_split
    from mtlv.run.cost import speed_key, threads_of, work_of

    check_options(cfg)
    corpus = load_corpus(cfg)
    check_config(cfg, corpus.num_labels, say_ignored=False)  # the plan says how many cells fold
    cell = open_cell(cfg)
    grouping = cell_grouping(cfg, corpus, cell)
    indices = [None] if cfg.arch.placement == "heads" else list(range(grouping.num_groups))
    keys, models = job_keys(cfg, indices), job_model_keys(cfg, grouping, indices)
    split = load_or_make_split(corpus, cfg.paths.cache_dir, seed=int(cfg.seed), **cfg.split)
    work, speed = work_of(cfg, split), speed_key(cfg, threads_of(cfg))
    jobs = []
    for index, key, model in zip(indices, keys, models):
        layout = cell.job(index)
        cols, _ = grouping.job_labels(index)
        names = [corpus.label_names[j] for j in cols]
        shown = ", ".join(names[:3]) + (f", +{len(names) - 3}" if len(names) > 3 else "")
        title = cell.run_name + (f" group {index} ({shown})" if index is not None else "")
        finished = finished_result(cfg, layout, key) is not None
        jobs.append(Job(0, layout.folder, cell.folder, title, str(cfg.arch.name), model, finished,
                        work=work, speed_key=speed))
    return jobs


def baseline_job(cfg: DictConfig) -> Job:
    from mtlv.baselines.job import identity, job_dir, run_name
    from mtlv.checks import check_options

    check_options(cfg)
    key = stable_hash(identity(cfg))
    folder = job_dir(cfg, key)
    done = folder / "result.json"
    finished = bool(cfg.resume) and done.exists() and read_json(done).get("key") == key
    return Job(0, folder, folder, run_name(cfg), "baseline", None, finished, speed_key="baseline")


def summary(plan: Plan) -> Counter:
    return Counter(j.arch for j in plan.jobs)

