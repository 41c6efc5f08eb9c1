"""Run the reference study's grid, then render its tables: `make reproduce-tables [SCALE=smoke|smoke-ci|minilm|openi-cpu|paper]`.

    python scripts/reproduce_tables.py --scale smoke|smoke-ci|minilm|openi-cpu|paper [--seeds 42,43] [--datasets openi]
        [--grid reference|beyond] [--families mtl,gmhl,gmtl,stl] [--no-report] [--dry-run] [--report-only] [--overrides key=value ...]

One Hydra multirun per (dataset, architecture family), so STL/GMTL cells expand into their group jobs
and are aggregated by MTLV's sweeper; the classical baselines run on the same splits. Resumable: every
finished job lives in a content-addressed folder, so rerunning the same command skips it and only
runs what is missing. `--overrides` are Hydra overrides added to every command; one naming a key the
grid sets (e.g. model=minilm, seed=1,2, clustering.k=3) replaces the grid's value.

Scales (see docs/reproduce.md):
  paper  Open-I and OHSUMED, BERT/BioBERT/BlueBERT, STL/MTL/GMHL/GMTL, clustering feature {label,
         description} x k {3,4,5}, all folds, TF-IDF/BoW x logistic regression/random forest. GPUs, and the
         hub models (bert-base-uncased, dmis-lab/biobert-base-cased-v1.1,
         bionlp/bluebert_pubmed_mimic_uncased_L-12_H-768_A-12) downloadable or cached.
The protocol scales (paper, minilm) repeat the cross-validation with seeds 42,43,44 by default: 12 (fold,
seed) pairs for Open-I, 9 for OHSUMED, so the Wilcoxon test of table 3 can reach p < 0.05 (4 or 3 pairs
never can); --seeds 42 runs one repeat.
  minilm the paper's protocol and grid (both datasets, all folds, 10/12 epochs, 128/256 tokens, STL/MTL/GMHL/
         GMTL over feature x k {3,4,5}, the baselines) with the packaged MiniLM only: offline, one GPU.
  openi-cpu  Open-I's protocol (all reports, 4 folds, 128 tokens) at a CPU-sized budget: one epoch, the packaged
         MiniLM, one seed (experiment/openi_cpu.yaml; ~3 min per model on one core). For comparing groupings
         without a GPU, e.g. --grid beyond --families mtl,gmtl --overrides clustering.k=3 clustering.algorithm=kmedoids.
  smoke  CPU, offline: the demo data (and Open-I when MTLV_DATA_DIR has it), the packaged MiniLM, 200
         documents, 2 folds, a few epochs, k=3 for both features, TF-IDF/BoW x logistic regression.
  smoke-ci  the same grid with the tiny random-init model and 1 epoch: checks every step runs, fast.
"""
from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHS = ("mtl", "gmhl", "gmtl", "stl")   # the slowest (one model per label) last
FAMILIES = ("baseline",) + ARCHS
CLUSTERING = ["clustering=kmedoids_label,kmedoids_desc"]
SCALES = {
    "paper": {"datasets": {"openi": "openi_paper", "ohsumed": "ohsumed_paper"}, "optional": (),
              "grid": ["model=bert,biobert,bluebert"], "ks": "3,4,5",
              "baselines": ["baseline.features=tfidf,bow", "baseline.classifier=logreg,random_forest"],
              "seeds": "42,43,44"},
    "minilm": {"datasets": {"openi": "openi_paper", "ohsumed": "ohsumed_paper"}, "optional": (),
               "grid": ["model=minilm"], "ks": "3,4,5", "offline": True,
               "baselines": ["baseline.features=tfidf,bow", "baseline.classifier=logreg,random_forest"],
               "seeds": "42,43,44"},
    "openi-cpu": {"datasets": {"openi": "openi_cpu"}, "optional": (), "grid": [], "ks": "3,4,5", "offline": True,
                  "baselines": ["baseline.features=tfidf,bow", "baseline.classifier=logreg,random_forest"],
                  "seeds": "42"},
    "smoke": {"datasets": {"demo": "smoke", "openi": "smoke"}, "optional": ("openi",),
              "grid": [], "ks": "3",
              "baselines": ["baseline.features=tfidf,bow", "baseline.classifier=logreg"]},
    "smoke-ci": {"datasets": {"demo": "smoke_ci", "openi": "smoke_ci"}, "optional": ("openi",),
                 "grid": [], "ks": "3",
                 "baselines": ["baseline.features=tfidf,bow", "baseline.classifier=logreg"]},
}


def key_of(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def merge(grid: list[str], user: list[str]) -> list[str]:
    """The grid's overrides, except those whose key the user set (Hydra rejects a key given twice)."""
    keys = {key_of(o) for o in user}
    return [o for o in grid if key_of(o) not in keys] + list(user)


def for_family(user: list[str], family: str) -> list[str]:
    """The user's overrides a family's command takes: `baseline.*` only the baselines' (conf/baseline.yaml
    builds on train.yaml, so every training override applies to the baselines too, not the reverse), and
    `clustering.*` options only the families that cluster (gmhl, gmtl): MTL, STL and the baselines have
    no clustering, and its options would not compose there."""
    def applies(override: str) -> bool:
        key = key_of(override)
        top = key.split(".")[0]
        if top == "baseline":
            return family == "baseline"
        return not (top == "clustering" and "." in key) or family in ("gmhl", "gmtl")

    return [o for o in user if applies(o)]


def dataset_config(dataset: str, experiment: str, user: list[str]):
    """The training config of one dataset with the user's overrides; a bad override stops here, with one
    `error:` line, before any sweep starts."""
    sys.path.insert(0, str(ROOT))
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from mtlv.config import compose
    from mtlv.errors import ConfigError

    # weighting.* options exist only once a weighting is picked (the grid picks it for GMHL)
    keep = [o for o in for_family(user, "dataset") if not key_of(o).startswith("hydra")
            and not (key_of(o).split(".")[0] == "weighting" and "." in key_of(o))]
    try:
        # A sweep override (seed=1,2) is composed with its first value here: this config gives the
        # dataset's files, folds and output folder, which a sweep of other keys does not change.
        single = [f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}" if o.is_sweep_override()
                  else o.input_line for o in OverridesParser.create().parse_overrides(keep)]
        return compose([f"experiment={experiment}", f"dataset={dataset}", *merge([], single)])
    except HydraException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"--overrides {' '.join(user)}: {first} (keys and values as for `python -m mtlv.train`; "
                          "`baseline.*` as for `python -m mtlv.baseline`)") from None


def available(cfg, optional: bool) -> bool:
    """Optional datasets run only when their files are there (smoke must work offline without them);
    required ones may also be downloadable by their loader (Open-I)."""
    path = cfg.dataset.source.get("path")
    return path is None or Path(str(path)).exists() or (not optional and bool(cfg.dataset.source.get("download")))


def study_datasets(scale: str, datasets: list[str] | None, user: list[str], announce: bool = True):
    """(dataset, experiment, config, the overrides every command of it shares) for each dataset of the
    scale that is present; a missing optional one is skipped (said once), a missing required one stops."""
    spec = SCALES[scale]
    for dataset, experiment in spec["datasets"].items():
        if datasets and dataset not in datasets:
            continue
        cfg = dataset_config(dataset, experiment, user)
        optional = dataset in spec["optional"] and not datasets
        if not available(cfg, optional):
            if optional:
                if announce:
                    print(f"[reproduce] {dataset}: {cfg.dataset.source.path} not found; skipped "
                          "(set MTLV_DATA_DIR to include it)", flush=True)
                continue
            from mtlv.errors import DataError

            raise DataError(f"{dataset}: data not found at {cfg.dataset.source.path}: set MTLV_DATA_DIR to the folder "
                            f"that has it, or dataset.path=... in --overrides")
        folds = ",".join(str(i) for i in range(int(cfg.split.folds or 1)))
        yield dataset, cfg, [f"experiment={experiment}", f"dataset={dataset}", f"split.fold={folds}"]


def commands(scale: str, datasets: list[str] | None, seeds: str, user: list[str],
             families: tuple[str, ...] = FAMILIES) -> list[list[str]]:
    spec, stamp = SCALES[scale], datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = []
    for dataset, cfg, common in study_datasets(scale, datasets, user):
        common = common + [f"seed={seeds}"]
        sweeps = Path(cfg.paths.output_dir) / "hydra" / f"reproduce-{scale}" / stamp
        for family in (f for f in FAMILIES if f in families):
            module = "mtlv.baseline" if family == "baseline" else "mtlv.train"
            grid = common + (spec["baselines"] if family == "baseline" else [f"arch={family}", *spec["grid"]])
            if family in ("gmhl", "gmtl"):
                grid += CLUSTERING + [f"clustering.k={spec['ks']}"]
            grid.append(f"hydra.sweep.dir={sweeps / f'{dataset}-{family}'}")
            out.append([sys.executable, "-m", module, "-m", *merge(grid, for_family(user, family))])
    return out


# `--grid beyond` (docs/grouping.md): after the scale's grid, the groupings learned from the data and the
# GMHL loss weightings, on the same datasets, folds and seeds. Cells the scale's grid already ran are reused.
BEYOND = {
    "clustering": ["clustering=kmedoids_label,kmedoids_desc,cooccurrence,affinity",
                   "clustering.algorithm=kmedoids,agglomerative", "clustering.k=3,4,5,auto"],
    "weighting": ["weighting=sum,mean,uncertainty,pcgrad,labelmean"],
}


def beyond_commands(scale: str, datasets: list[str] | None, seeds: str, user: list[str],
                    families: tuple[str, ...] = FAMILIES) -> list[list[str]]:
    spec, stamp = SCALES[scale], datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = []
    for dataset, cfg, common in study_datasets(scale, datasets, user, announce=False):  # commands() said it
        common = common + [f"seed={seeds}", *spec["grid"]]
        sweeps = Path(cfg.paths.output_dir) / "hydra" / f"reproduce-{scale}-beyond" / stamp
        for family in (f for f in ("gmhl", "gmtl") if f in families):
            grid = common + [f"arch={family}", *BEYOND["clustering"], f"hydra.sweep.dir={sweeps / f'{dataset}-{family}'}"]
            out.append([sys.executable, "-m", "mtlv.train", "-m", *merge(grid, for_family(user, family))])
        if "gmhl" in families:
            # the weightings at the scale's middle k: a weighting is compared with the others, not across k
            # (PCGrad's per-task backward passes make each of its cells cost about k models)
            ks = spec["ks"].split(",")
            grid = common + ["arch=gmhl", f"clustering.k={ks[len(ks) // 2]}", *BEYOND["weighting"],
                             f"hydra.sweep.dir={sweeps / f'{dataset}-gmhl-weighting'}"]
            out.append([sys.executable, "-m", "mtlv.train", "-m", *merge(grid, for_family(user, "gmhl"))])
    return out


def run(cmd: list[str], env: dict) -> tuple[int, float]:
    print(f"\n[reproduce] {' '.join(cmd[1:])}", flush=True)
    start = time.time()
    code = subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode  # an argument list: no shell
    print(f"[reproduce] exit {code} after {time.time() - start:.0f} s", flush=True)
    return code, time.time() - start


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from mtlv.errors import entry_point

    return entry_point(_main)(argv)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="smoke")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds: repeats of the cross-validation "
                        "(default: 42,43,44 for paper and minilm, 42 for smoke)")
    parser.add_argument("--datasets", default=None, help="comma-separated subset of the scale's datasets")
    parser.add_argument("--overrides", nargs="*", default=[], help="Hydra overrides for every command")
    parser.add_argument("--report-args", nargs="*", default=[], help="options of `python -m mtlv.report`")
    parser.add_argument("--grid", choices=["reference", "beyond"], default="reference",
                        help="beyond: also learned groupings (co-occurrence, affinity; k-medoids and agglomerative; "
                             "k=3,4,5,auto) and GMHL loss weightings (docs/grouping.md)")
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help="comma-separated subset of baseline,mtl,gmhl,gmtl,stl to run (e.g. the neural ones on a "
                             "GPU machine and the CPU baselines elsewhere; both write into the same store)")
    parser.add_argument("--no-report", action="store_true",
                        help="train only (a machine without the MLflow store: `python -m mtlv.track` the runs later)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument("--report-only", action="store_true", help="skip the grid, render the tables")
    args = parser.parse_args(argv)

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if args.scale.startswith("smoke") or SCALES[args.scale].get("offline"):
        env.setdefault("HF_HUB_OFFLINE", "1")  # packaged weights only
    datasets = args.datasets.split(",") if args.datasets else None
    families = tuple(args.families.split(","))
    if unknown := sorted(set(families) - set(FAMILIES)):
        parser.error(f"--families: unknown {','.join(unknown)}; choose from {','.join(FAMILIES)}")
    seeds = args.seeds or SCALES[args.scale].get("seeds", "42")
    # The beyond grid's GMHL/GMTL sweeps hold every cell of the reference grid's (features, k-medoids, the
    # scale's k), so under --grid beyond those run once, there: each sweep costs a start-up (configs,
    # groupings, the launcher's workers), and on a GPU box that is idle device time.
    reference = tuple(f for f in families if args.grid != "beyond" or f not in ("gmhl", "gmtl"))
    cmds = [] if args.report_only else commands(args.scale, datasets, seeds, args.overrides, reference)
    if args.grid == "beyond" and not args.report_only:
        cmds += beyond_commands(args.scale, datasets, seeds, args.overrides, families)
    report = [] if args.no_report else [[sys.executable, "-m", "mtlv.report", *args.report_args]]
    if args.dry_run:
        print("\n".join(" ".join(c[1:]) for c in cmds + report))
        return 0
    start, failed = time.time(), []
    for cmd in cmds:
        code, _ = run(cmd, env)
        if code != 0:  # keep going: the other families' results still make tables; rerun resumes this one
            failed.append(" ".join(cmd[3:]))
    code = run(report[0], env)[0] if report else 0
    print(f"\n[reproduce] {len(cmds)} sweeps in {time.time() - start:.0f} s" + (
        f"; {len(failed)} failed (rerun the same command to finish them):\n  " + "\n  ".join(failed) if failed else ""),
        flush=True)
    return 1 if failed or code else 0


if __name__ == "__main__":
    sys.exit(main())
