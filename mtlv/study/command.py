"""The steps of `python -m mtlv.study`: compose the study, list its sweeps, plan and estimate them, print the
plan, run it, write the report."""
from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mtlv import launch
from mtlv.cli import check_command_line
from mtlv.config import compose
from mtlv.errors import ConfigError, DataError, JobsFailedError
from mtlv.io import write_json, write_text
from mtlv.report.power import plan_power_line, plan_ranking_line
from mtlv.report.recommend import MARGIN, check_margin
from mtlv.study.plan import Plan, make_plan
from mtlv.study.estimate import JOB_FIXED_S, SWEEP_START_S, study_seconds
from mtlv.study.progress import duration
from mtlv.study.spec import (TRAIN_MODULE, Sweep, check_study, datasets, is_study_override, key_of, left_out, sweeps_for,
                             top_of, value_text)

log = logging.getLogger(__name__)
MULTIRUN_FLAGS = ("-m", "--multirun")


def first_values(overrides: list[str]) -> list[str]:
    """Sweep overrides (`seed=1,2`) with their first value: the study's own config is one config."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return [f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}" if o.is_sweep_override()
            else o.input_line for o in OverridesParser.create().parse_overrides(overrides)]


def compose_study(args: list[str]) -> tuple[DictConfig, list[str]]:
    """The composed study config (conf/study.yaml: train.yaml plus the `study` node) and the command's
    overrides that go to every sweep. A bad override is one `error:` line here, before anything runs."""
    from hydra.errors import HydraException

    args = [a for a in args if a not in MULTIRUN_FLAGS]
    check_command_line(args)
    user = [a for a in args if not is_study_override(a)]
    # clustering.* options exist only once a clustering is chosen (the plan composes them with each grid's
    # clustering, and names the sweep if one does not fit); baseline.* only in the baselines' config
    later = [a for a in args if top_of(a) == "clustering" and "." in key_of(a) or top_of(a) == "baseline"]
    try:
        cfg = compose(first_values([a for a in args if a not in later]), config_name="study", return_hydra=True)
        if baseline := [a for a in later if top_of(a) == "baseline"]:
            compose(first_values(baseline), config_name="baseline")
    except HydraException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{first} (options as for `python -m mtlv.train`; the study's own under study.*)") from None
    if not cfg.get("study") or not cfg.study.get("grids"):
        raise ConfigError("study=...: choose a study from conf/study/ (quick, groupings, thesis, ...)")
    # the study's own values first: check_study then makes the output folders to see that they can be written
    check_margin(cfg.study.get("margin", MARGIN), "study.margin")
    confirm = cfg.study.get("confirm", 0)
    if not isinstance(confirm, int) or isinstance(confirm, bool) or confirm < 0:
        raise ConfigError(f"study.confirm={confirm}: the number of fresh seeds to train the recommendation's settings "
                          "on again, an integer >= 0 (0: none)")
    check_study(cfg)
    return cfg, user


def dataset_sweeps(cfg: DictConfig, user: list[str], notes: list[str]) -> list[Sweep]:
    """The sweeps of every dataset of the study whose data is there; a missing optional one is noted."""
    out = []
    for name, experiment, optional in datasets(cfg.study, user):
        base = [f"experiment={experiment}"] if experiment else []
        base += [f"dataset={name}"] if name else []
        keep = [o for o in first_values(user) if o.split("=", 1)[0].lstrip("+~").split(".")[0].split("/")[0]
                not in ("hydra", "baseline", "clustering")]
        if cfg.study.get("folds") is not None:
            keep.append(f"split.folds={int(cfg.study.folds)}")
        data_cfg = compose(merge_keep(base, keep), config_name="train")
        path = data_cfg.dataset.get("path")
        if optional and path and not Path(str(path)).exists():
            notes.append(f"{data_cfg.dataset.name}: {path} not found; skipped (set MTLV_DATA_DIR to include it)")
            continue
        if not optional:  # a dataset the study needs: bad or missing data is one error line now, not skipped cells
            from mtlv.data.load import load_corpus

            load_corpus(data_cfg)
        folds = data_cfg.split.folds
        out += sweeps_for(cfg.study, name or str(data_cfg.dataset.name), experiment, folds, user)
    return out


def merge_keep(base: list[str], user: list[str]) -> list[str]:
    keys = {o.split("=", 1)[0] for o in user}
    return [o for o in base if o.split("=", 1)[0] not in keys] + user


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def workers(cfg: DictConfig) -> int | None:
    """Jobs that run at once under the chosen launcher: the joblib launcher's n_jobs, 1 for the basic one,
    None on SLURM (the queue decides)."""
    launcher = cfg.hydra.launcher
    if launch.is_submitit(launcher):
        return None
    return launch.joblib_workers(launcher, launch.cores()) or 1


def estimates(plan: Plan, runs_dir: str, probe: bool, say) -> tuple[dict[Path, float], list[str]]:
    """Estimated seconds per job that trains, and where each speed came from."""
    from mtlv.study.estimate import from_history
    from mtlv.study.estimate import probe as run_probe

    speeds, sources = {}, []
    for key, job_cfg in plan.speed_configs.items():
        speed = from_history(runs_dir, key)
        if speed is None and probe:
            say(f"[study] timing {job_cfg.model.name} on {job_cfg.dataset.name} with a short probe ...")
            speed = run_probe(job_cfg)
        if speed is not None:
            speeds[key] = speed
            sources.append(f"{job_cfg.model.name}: {speed.per_doc_s * 1000:.1f} ms per training document, "
                           f"{speed.fixed_s:.0f} s per job besides (from {speed.source})")
    return {j.folder: speeds[j.speed_key].seconds(j.work) + JOB_FIXED_S for j in plan.to_train()
            if j.speed_key in speeds}, sources


def budget_text(trainer) -> str:
    steps = int(trainer.get("max_steps") or -1)
    epochs = f"{trainer.max_epochs} epoch(s)"
    return f"{steps} optimizer steps (at most {epochs})" if steps > 0 else epochs


def plan_text(cfg: DictConfig, plan: Plan, times: dict[Path, float], sources: list[str], parallel: int | None,
              folder: Path) -> str:
    study = cfg.study
    lines = [f"study {study.name}: {study.get('about') or ''}".rstrip(": "), f"folder: {folder}"]
    for index, sweep_cfg in sorted(plan.configs.items()):
        if sweep_cfg.get("task_name") == "baseline":
            continue
        from mtlv.data.load import data_name, load_corpus

        corpus = load_corpus(sweep_cfg)
        protocol = (f"{sweep_cfg.split.folds} folds" if sweep_cfg.split.folds else
                    f"one split (test {sweep_cfg.split.test_size:g})")
        line = (f"data: {data_name(sweep_cfg)} ({sweep_cfg.dataset.get('path') or 'packaged'}): {len(corpus)} documents, "
                f"{corpus.num_labels} labels; {protocol}; model {sweep_cfg.model.name}, "
                + budget_text(sweep_cfg.trainer))
        if line not in lines:
            lines.append(line)
    header = f"  {'sweep':<28} {'cells':>6} {'jobs':>6} {'finished':>9} {'to train':>9} {'reuse':>6}"
    lines += ["", header]
    for index, sweep in enumerate(plan.sweeps):
        jobs = plan.jobs_of(index)
        lines.append(f"  {sweep.name:<28} {len({j.cell for j in jobs}):>6} {len(jobs):>6} "
                     f"{sum(j.finished for j in jobs):>9} {sum(j.trains for j in jobs):>9} "
                     f"{sum(j.reuses for j in jobs):>6}")
    total, done, train = len(plan.jobs), sum(j.finished for j in plan.jobs), len(plan.to_train())
    folded = f" ({plan.folded} more cells fold into these: options their architecture does not use)" if plan.folded else ""
    lines += ["", f"total: {len(plan.cells)} cells{folded}; {total} jobs (trainings), {plan.models()} distinct models; "
                  f"{done} finished before, {train} to train now"]
    if train:
        known = [times[j.folder] for j in plan.to_train() if j.folder in times]
        if known:
            from mtlv.study.run import needs_run

            sweeps = sum(1 for i in range(len(plan.sweeps)) if needs_run(plan, i))
            job_s, wall_s = study_seconds(known, sweeps, parallel)
            wall = (f"; about {duration(wall_s)}" + (f" with {parallel} jobs at a time" if parallel > 1 else "")
                    if parallel else "; on SLURM the wall-clock depends on the queue")
            missing = train - len(known)
            lines.append(f"estimate: {duration(job_s)} of job time{wall}"
                         + (f" (+ {missing} jobs not estimated: baselines, seconds each)" if missing else ""))
            lines += [f"  speed of {s}" for s in sources]
            lines.append(f"  besides training: ~{JOB_FIXED_S:.0f} s per job (data, files, MLflow) and ~"
                         f"{SWEEP_START_S:.0f} s per sweep started ({sweeps} here: imports, composing its cells)")
        elif all(j.arch == "baseline" for j in plan.to_train()):
            lines.append("estimate: only classical baselines to fit (seconds each)")
        else:
            lines.append("estimate: none (no earlier jobs of this kind on this machine; study.probe=true times one)")
    lines += plan_power_line(plan)  # before any training: can the report's tests be significant at all
    lines += plan_ranking_line(plan, study.get("seed_spread"))  # and can its ranking be trusted
    lines += [f"note: {n}" for n in plan.notes]
    if parallel == 1 and train > 1 and (cores := launch.cores()) > 1 and not _cuda():
        lines.append(f"note: the basic launcher trains one job at a time; on this machine's {cores} CPU cores, "
                     f"hydra/launcher=parallel hydra.launcher.n_jobs={cores} trains {cores} at once, one thread each "
                     "(how the times in docs/study.md are measured)")
    if out := left_out(study):
        lines.append(f"note: study.archs={value_text(list(study.archs))} leaves out {', '.join(out)} of this study's grids "
                     "(study.archs=null runs every architecture)")
    return "\n".join(lines)


# Options that change how jobs run, not what they compute (as for job keys, mtlv/config.py): the same study.
HOW_KEYS = ("hydra", "callbacks.fault", "callbacks.progress_bar", "trainer.enable_progress_bar", "resume",
            "reuse_models", "torch_threads", "pin_gpu_per_job")


def study_folder(cfg: DictConfig, user: list[str], plan: Plan) -> Path:
    """The study's folder, named by what the command asked for (the study and the options that change what
    runs), so that rerunning the same command, after a failure or with a newer MTLV, finds it again."""
    from mtlv.io import stable_hash

    names = "-".join(dict.fromkeys(s.dataset for s in plan.sweeps)) or "none"
    study = OmegaConf.to_container(cfg.study, resolve=True)
    # how it runs or is reported, what it says (seed_spread), or what runs after it (confirm): not what runs
    for key in ("dry_run", "probe", "report", "verbose", "confirm", "margin", "seed_spread"):
        study.pop(key, None)
    asked = sorted(o for o in user if not key_of(o).startswith(HOW_KEYS))
    return Path(cfg.paths.output_dir) / "studies" / f"{cfg.study.name}-{names}-{stable_hash([study, asked])[:8]}"


def save_plan(folder: Path, plan: Plan, text: str) -> None:
    write_text(folder / "plan.txt", text + "\n")
    write_json(folder / "plan.json", {
        "sweeps": [{"name": s.name, "command": s.command()[1:], "notes": list(s.notes)} for s in plan.sweeps],
        "jobs": [{"sweep": plan.sweeps[j.sweep].name, "title": j.title, "arch": j.arch, "folder": str(j.folder),
                  "cell": str(j.cell), "model_key": j.model_key, "finished_before": j.finished, "reuses": j.reuses}
                 for j in plan.jobs],
        "notes": plan.notes, "dropped": plan.dropped})


def incomplete(plan: Plan) -> list[dict]:
    """The study's settings without a result, for the report's first lines: its failed jobs (with their error),
    the jobs that never ran, and the cells the plan dropped (with why)."""
    from mtlv.io import read_json

    out = []
    for job in plan.jobs:
        status = job.status()
        if status == "failed":
            error = read_json(job.folder / "failed.json").get("error", "")
            out.append({"setting": job.title, "status": "failed", "error": error})
        elif status == "todo":
            out.append({"setting": job.title, "status": "missing",
                        "error": f"see the log of its sweep {plan.sweeps[job.sweep].name} in logs/"})
    by_error: dict[tuple[str, str], list[str]] = {}  # a grid's k x fold x seed cells often share one reason
    for d in plan.dropped:
        by_error.setdefault((d["sweep"], d["error"]), []).append(d["cell"])
    for (sweep, error), cells in by_error.items():
        shown = "; ".join(cells[:3]) + (f"; and {len(cells) - 3} more" if len(cells) > 3 else "")
        out.append({"setting": f"{sweep}: {shown}" if len(cells) == 1 else f"{sweep}: {len(cells)} cells ({shown})",
                    "status": "dropped", "error": error})
    return out


def report(cfg: DictConfig, plan: Plan, folder: Path) -> Path | None:
    """The study's report (mtlv.report) over its own cells only, in the study folder."""
    from mtlv.report.page import build_report

    if cfg.get("logger") is None:
        log.info("no MLflow logger (logger=none): no report; `python -m mtlv.track` logs the runs, then mtlv.report")
        return None
    report_cfg = compose([f"out={value_text(str(folder / 'report'))}"], config_name="report")  # any folder name
    with_cells = OmegaConf.merge(report_cfg, {"tracking_uri": cfg.tracking.uri, "margin": cfg.study.get("margin", 0.01),
                                              "cells": [str(c) for c in plan.cells],
                                              "incomplete": incomplete(plan)})
    return build_report(with_cells)


def refuse_encoderless(sweeps: list[Sweep], plan: Plan) -> None:
    """A study that asked for encoders and can train none of them here is an error, not a baselines-only study
    that recommends TF-IDF: the reasons are the dropped cells' errors (e.g. a max length the encoder lacks)."""
    asked = [s.name for s in sweeps if s.module == TRAIN_MODULE]
    if not asked or any(s.module == TRAIN_MODULE for s in plan.sweeps):
        return
    why = list(dict.fromkeys(d["error"] for d in plan.dropped if d["sweep"] in asked))
    raise ConfigError(f"no encoder grid of this study can run here (every cell of {', '.join(asked)} was dropped): "
                      + "; ".join(why or ["see the notes"]) + " (fix that option; study.archs=[baseline] runs only "
                      "the baselines)")


def run_study(args: list[str]) -> int:
    from mtlv.study.progress import Progress
    from mtlv.study.run import run_plan

    cfg, user = compose_study(args)
    notes: list[str] = []
    sweeps = dataset_sweeps(cfg, user, notes)
    if not sweeps:
        raise DataError("the study has nothing to run here: " + ("; ".join(notes) or "no dataset, grid or baseline "
                                                                 "is selected (study.archs, study.run_grids)"))
    print(f"[study] planning {cfg.study.name}: {len(sweeps)} sweeps (composing cells, computing task groupings)",
          flush=True)
    plan = make_plan(sweeps)
    plan.notes = notes + plan.notes
    refuse_encoderless(sweeps, plan)
    parallel = workers(cfg)
    times, sources = estimates(plan, cfg.paths.runs_dir, bool(cfg.study.get("probe", True)), print) \
        if plan.to_train() else ({}, [])
    folder = study_folder(cfg, user, plan)
    text = plan_text(cfg, plan, times, sources, parallel, folder)
    if (confirm := int(cfg.study.get("confirm") or 0)) > 0:
        text += (f"\nconfirm: study.confirm={confirm}: after the report, the recommended setting, the cheapest "
                 f"equivalent, MTL, STL and the best baseline train again on {confirm} fresh seed(s); that plan is "
                 "printed, counted and timed then (it depends on the recommendation)")
    save_plan(folder, plan, text)
    print(text, flush=True)
    if cfg.study.get("dry_run"):
        print("study.dry_run=true: stopped after the plan", flush=True)
        return 0
    progress = Progress(plan, times, parallel or 1)
    outcome = run_plan(plan, progress, folder / "logs", verbose=bool(cfg.study.get("verbose")))
    done, failed, total = progress.counts()
    progress.say(f"finished: {progress.status()}")
    if outcome.stopped:
        stopped(outcome.stopped)
    page = report(cfg, plan, folder) if cfg.study.get("report", True) else None
    confirmed = None
    if page is not None:
        from mtlv.study.model_commands import add_to_recommendation, budget_saves

        if int(cfg.study.get("confirm") or 0) > 0:  # fresh seeds of the recommendation: "Did it hold?"
            from mtlv.study.confirm import run_confirm

            confirmed = run_confirm(cfg, plan, folder, page, parallel, (estimates, plan_text, save_plan))
        add_to_recommendation(page.parent, plan, budget_saves(plan))
        print_recommendation(page)
        html = page.with_suffix(".html")
        print(f"report: {page}" + (f"\n        {html}" if html.exists() else ""), flush=True)
    if confirmed is not None:  # the confirmation's jobs count with the study's
        more, (_, more_failed, more_total) = confirmed
        if more.stopped:
            stopped(more.stopped)
        outcome.failed += more.failed
        failed, total = failed + more_failed, total + more_total
    if outcome.failed:
        raise JobsFailedError(f"{failed} of {total} jobs failed (finished jobs are kept; rerun the same command to "
                              "run only the unfinished ones):\n  " + "\n  ".join(outcome.failed))
    return 0


def stopped(signum: int) -> None:
    import signal
    import sys

    print(f"stopped: {signal.Signals(signum).name} ended the study; finished jobs are kept, and "
          "rerunning the same command runs only the rest", file=sys.stderr, flush=True)
    raise SystemExit(128 + int(signum))


def print_recommendation(page: Path) -> None:
    """The report's recommendation on the console (the rest is in the report)."""
    path = page.parent / "recommendation.md"
    if path.exists():
        print("\n" + path.read_text(encoding="utf-8").strip() + "\n", flush=True)
