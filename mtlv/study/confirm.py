"""Replication built into a study (`study.confirm=N`): after the report, the settings the recommendation
rests on are trained again on N fresh seeds (new splits: the seed draws the split), and the report says
whether the recommendation held ("Did it hold?", mtlv/report/confirm.py).

The settings, per report section: the recommended one, the cheapest equivalent, MTL and STL of the
recommended model (where the study ran them) and the best classical baseline. Each becomes one sweep of the
cell the study ran it as, with `seed=<fresh seeds>` (and the study's folds): the same Hydra multiruns,
launcher, plan, estimate and progress as the study's own sweeps, and content-addressed jobs, so that a
rerun (`python -m mtlv.study ... study.confirm=2` of a finished study) trains only what is missing.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from mtlv.study.plan import Plan
from mtlv.study.spec import Sweep, key_of

REPLACED = ("seed", "split.fold")   # what the fresh sweeps set themselves


def fresh_seeds(used: list[int], n: int) -> list[int]:
    """N seeds after the study's own (never one it used): its splits are new."""
    start = max(used) + 1 if used else 1
    return list(range(start, start + n))


def _matches(runs: pd.DataFrame, item: dict, dataset: str) -> pd.DataFrame:
    setting = runs.setting.fillna("").astype(str)
    return runs[(runs.dataset.astype(str) == dataset) & (runs.arch.astype(str) == str(item["arch"]))
                & (runs.model.astype(str) == str(item["model"])) & (setting == str(item.get("setting") or ""))]


def settings_to_confirm(section: dict, runs: pd.DataFrame) -> list[tuple[str, dict]]:
    """(role, {arch, model, setting, name}) of the settings to train again, each once, in report order."""
    chosen = section.get("chosen")
    if not chosen:
        return []
    out: list[tuple[str, dict]] = [("recommended", chosen)]
    if (cheapest := section.get("cheapest")) is not None:
        out.append(("cheapest equivalent", cheapest))
    mine = runs[(runs.dataset.astype(str) == str(section["dataset"])) & (runs.model.astype(str) == str(chosen["model"]))]
    for arch in ("mtl", "stl"):  # the anchors, where the study ran them
        if (mine.arch == arch).any():
            out.append((arch.upper(), {"arch": arch, "model": chosen["model"], "setting": "",
                                       "name": f"{arch.upper()} {chosen['model']}"}))
    if (baseline := section.get("baseline")) is not None:
        out.append(("best baseline", baseline))
    seen, unique = set(), []
    for role, item in out:
        key = (item["arch"], str(item["model"]), str(item.get("setting") or ""))
        if key not in seen:
            seen.add(key)
            unique.append((role, {k: item.get(k) for k in ("arch", "model", "setting", "name")}))
    return unique


ROLE_NAMES = {"recommended": "recommended", "cheapest equivalent": "cheapest", "MTL": "mtl", "STL": "stl",
              "best baseline": "baseline"}   # the sweeps' names (a role is one setting per section)


def confirm_sweeps(plan: Plan, runs: pd.DataFrame, sections: list[dict], seeds: list[int]) -> list[Sweep]:
    """One sweep per setting to confirm: the cell the study ran it as, on the fresh seeds (and its folds)."""
    cells = {str(c) for c in plan.cells}
    by_cell = {str(j.cell): j for j in plan.jobs}
    out, seen = [], set()
    for section in sections:
        for role, item in settings_to_confirm(section, runs):
            rows = _matches(runs, item, str(section["dataset"]))
            rows = rows[rows.cell_dir.astype(str).isin(cells)]
            jobs = [by_cell[str(c)] for c in dict.fromkeys(rows.cell_dir.astype(str)) if str(c) in by_cell]
            if not jobs or not jobs[0].overrides:
                continue
            folds = sorted({o.split("=", 1)[1] for j in jobs for o in j.overrides if key_of(o) == "split.fold"}, key=str)
            base = [o for o in jobs[0].overrides if key_of(o) not in REPLACED]
            overrides = base + ([f"split.fold={','.join(folds)}"] if folds else []) + \
                [f"seed={','.join(str(s) for s in seeds)}"]
            source = plan.sweeps[jobs[0].sweep]
            if tuple(overrides) in seen:
                continue
            seen.add(tuple(overrides))
            out.append(Sweep(source.dataset, f"confirm-{ROLE_NAMES[role]}", source.module, tuple(overrides)))
    return out


def study_seeds(plan: Plan) -> list[int]:
    """The seeds the study's own cells ran with (the config's seed where no sweep set one)."""
    seeds = {int(o.split("=", 1)[1]) for j in plan.jobs for o in j.overrides if key_of(o) == "seed"}
    return sorted(seeds or {int(c.seed) for c in plan.configs.values() if c.get("seed") is not None})


def fresh_runs(uri: str, cells: list[Path]) -> pd.DataFrame:
    """The finished results of the confirmation's cells (as the report collects them)."""
    from mtlv.report.collect import collect

    return collect(uri, None, "", [str(c) for c in cells]).runs


def _append(path: Path, lines: list[str]) -> None:
    from mtlv.io import write_text

    if path.exists():
        write_text(path, path.read_text(encoding="utf-8").rstrip("\n") + "\n" + "\n".join(lines) + "\n")


def run_confirm(cfg, plan: Plan, folder: Path, page: Path, parallel: int | None, planning):
    """Plan, run and report the confirmation (after the study's report). Returns the run's Outcome and its
    (done, failed, total) jobs; None when there is nothing to confirm. `planning`: the study command's own
    (estimates, plan_text, save_plan), so that the confirmation is planned, timed and shown as the study was
    (passed in: this module is below the command, which imports it)."""
    from mtlv.io import read_json, write_json
    from mtlv.report.confirm import held, markdown
    from mtlv.report.html import write_html

    estimates, plan_text, save_plan = planning
    from mtlv.study.plan import make_plan
    from mtlv.study.progress import Progress
    from mtlv.study.run import run_plan

    report_dir = page.parent
    data = read_json(report_dir / "recommendation.json")
    runs = pd.read_csv(report_dir / "runs.csv") if (report_dir / "runs.csv").exists() else pd.DataFrame()
    sections = [s for s in data.get("sections", []) if s.get("chosen")]
    seeds = fresh_seeds(study_seeds(plan), int(cfg.study.confirm))
    sweeps = confirm_sweeps(plan, runs, sections, seeds) if len(runs) else []
    if not sweeps:
        print("[study] study.confirm: no recommended setting to confirm", flush=True)
        return None
    print(f"[study] confirming the recommendation on {len(seeds)} fresh seed(s) ({','.join(map(str, seeds))}): "
          f"planning {len(sweeps)} sweeps", flush=True)
    confirm = make_plan(sweeps)
    times, sources = estimates(confirm, cfg.paths.runs_dir, bool(cfg.study.get("probe", True)), print) \
        if confirm.to_train() else ({}, [])
    text = plan_text(cfg, confirm, times, sources, parallel, folder / "confirm").split("\n")
    text = [f"confirmation of study {cfg.study.name}: the recommendation's settings on fresh seeds "
            f"{','.join(map(str, seeds))} (study.confirm={len(seeds)})"] + \
        [line for line in text[1:] if not line.startswith("note: study.archs=")]
    save_plan(folder / "confirm", confirm, "\n".join(text))
    print("\n".join(text), flush=True)
    progress = Progress(confirm, times, parallel or 1)
    outcome = run_plan(confirm, progress, folder / "confirm" / "logs", verbose=bool(cfg.study.get("verbose")))
    progress.say(f"confirmation finished: {progress.status()}")
    fresh = fresh_runs(str(cfg.tracking.uri), confirm.cells)
    results = [held(s, settings_to_confirm(s, runs), fresh, runs) for s in sections]
    lines = markdown(results, seeds)
    _append(page, lines)
    _append(report_dir / "recommendation.md", lines)
    if page.with_suffix(".html").exists():
        write_html(page)
    data["confirm"] = {"seeds": seeds, "sections": results}
    write_json(report_dir / "recommendation.json", data)
    return outcome, progress.counts()
