"""Fault drill: kill things the way clusters do, rerun the same commands, and check that nothing
finished was lost. Uses the tiny model and the demo data, in a temporary output folder.

    python scripts/fault_drill.py [--output-dir DIR] [--jobs 4] [--writers 8] [--steps run,sweep,parallel]

Steps
  run       A reference training run; the same run SIGKILLed mid-epoch (from outside, the whole
            process group); the same command again. It must resume from the last checkpoint and end
            with exactly the reference's metrics, predictions and weights (CPU, same seed), in one
            MLflow run.
  sweep     An STL sweep (one job per label) SIGKILLed after a few jobs finished; the same command
            again. It must run only the unfinished jobs (finished ones untouched), aggregate, equal an
            uninterrupted sweep, and leave one MLflow run per job plus the parent.
  parallel  The same sweep with Hydra's joblib launcher (--jobs at once) on the default SQLite store,
            then --writers processes writing runs to one fresh store at the same moment through
            mtlv.tracking: no 'database is locked', no duplicated or missing runs.

Exit code 0 when every check passed. Takes a few minutes on a laptop CPU.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "demo"
RUN = ["model=tiny", "dataset.limit=160", "trainer.max_epochs=3", "trainer.enable_progress_bar=false",
       "callbacks.progress_bar=null", "eval.save_weights=false", "torch_threads=1"]
SWEEP = ["arch=stl", "model=tiny", "dataset.limit=120", "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
         "callbacks.progress_bar=null", "eval.save_weights=false", "torch_threads=1"]


# ----------------------------------------------------------------------------- plumbing
class Checks:
    """Collects named pass/fail checks and prints each as it is made."""

    def __init__(self, title: str) -> None:
        self.title, self.results = title, []
        print(f"\n=== {title}", flush=True)

    def say(self, text: str) -> None:
        print(f"  {text}", flush=True)

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        self.results.append((bool(ok), what, detail))
        print(f"  [{'ok' if ok else 'FAIL'}] {what}{f' ({detail})' if detail else ''}", flush=True)
        return bool(ok)

    @property
    def passed(self) -> bool:
        return all(ok for ok, _, _ in self.results)


def env_for(output_dir: Path) -> dict:
    env = dict(os.environ, MTLV_OUTPUT_DIR=str(output_dir), PYTHONUNBUFFERED="1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def train_cmd(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "mtlv.train", *args]


def run_train(output_dir: Path, args: list[str], log: Path, timeout: float = 1800) -> subprocess.CompletedProcess:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as out:
        return subprocess.run(train_cmd(args), cwd=ROOT, env=env_for(output_dir), stdout=out,
                              stderr=subprocess.STDOUT, timeout=timeout)


def start_train(output_dir: Path, args: list[str], log: Path) -> subprocess.Popen:
    """Start training in its own process group (so a kill reaches every worker it spawns)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "w", encoding="utf-8")  # noqa: SIM115 - closed by the child exiting
    return subprocess.Popen(train_cmd(args), cwd=ROOT, env=env_for(output_dir), stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)


def kill_group(proc: subprocess.Popen) -> int:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait()


def wait_for(predicate, proc: subprocess.Popen | None, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process exited ({proc.returncode}) before {what}")
        if time.time() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def job_folders(output_dir: Path, pattern: str) -> list[Path]:
    return sorted((output_dir / "runs" / EXPERIMENT).glob(pattern))


def mlflow_runs(output_dir: Path, experiment: str = EXPERIMENT) -> list:
    from mtlv import tracking

    client = tracking.client(tracking.sqlite_uri(Path(output_dir) / "mlflow.db"))
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=50000)


def same_json(a: Path, b: Path) -> bool:
    return a.read_text(encoding="utf-8") == b.read_text(encoding="utf-8")  # NaN-safe: compare the text


def same_weights(a: Path, b: Path) -> tuple[bool, str]:
    import torch

    sa = torch.load(a, map_location="cpu", weights_only=True)
    sb = torch.load(b, map_location="cpu", weights_only=True)
    keys = sorted(sa["state_dict"])
    differ = [k for k in keys if not torch.equal(sa["state_dict"][k], sb["state_dict"][k])]
    return not differ and sa["global_step"] == sb["global_step"], \
        f"{len(keys) - len(differ)}/{len(keys)} tensors bit-identical, steps {sa['global_step']} vs {sb['global_step']}"


# ----------------------------------------------------------------------------- step: run
def drill_run(base: Path) -> Checks:
    c = Checks("kill -9 a training run mid-epoch, rerun the same command")
    ref_dir, dir_ = base / "run-reference", base / "run-killed"
    c.say(f"reference: python -m mtlv.train {' '.join(RUN)}  (uninterrupted, MTLV_OUTPUT_DIR={ref_dir})")
    ref = run_train(ref_dir, RUN, base / "logs" / "run-reference.log")
    if not c.check(ref.returncode == 0, "reference run finished", f"exit {ref.returncode}"):
        c.say(tail(base / "logs" / "run-reference.log"))
        return c

    marker = base / "run-killed.marker"
    fault = (f"+callbacks.fault={{_target_:mtlv.run.faults.KillAt,epoch:1,batch:3,action:wait,"
             f"marker:'{marker}'}}")
    c.say(f"same command, MTLV_OUTPUT_DIR={dir_}, with a callback that pauses in epoch 1 after batch 3")
    proc = start_train(dir_, RUN + [fault], base / "logs" / "run-killed-1.log")
    try:
        wait_for(marker.exists, proc, 1200, "the run reached epoch 1, batch 3")
    except RuntimeError as err:
        kill_group(proc)
        c.check(False, "the run reached the kill point", str(err))
        c.say(tail(base / "logs" / "run-killed-1.log"))
        return c
    code = kill_group(proc)
    c.check(code == -signal.SIGKILL, "SIGKILL sent to the run's process group mid-epoch", f"exit status {code}")
    folders = job_folders(dir_, "mtl-tiny-*/model")
    if not c.check(len(folders) == 1, "the killed run left its job folder"):
        return c
    job = folders[0]
    ckpt = job / "checkpoints" / "last.ckpt"
    import torch

    epoch = torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"] if ckpt.exists() else None
    c.check(ckpt.exists() and not (job / "result.json").exists(),
            "on disk: last.ckpt of the finished epoch, no result.json (unfinished)", f"last.ckpt epoch {epoch}")
    leftovers = [p.name for p in job.rglob(".*.tmp")]
    c.check(not leftovers, "no half-written temporary files left behind", ", ".join(leftovers))

    c.say("rerun: the same command, without the fault")
    again = run_train(dir_, RUN, base / "logs" / "run-killed-2.log")
    log = (base / "logs" / "run-killed-2.log").read_text(encoding="utf-8", errors="replace")
    c.check(again.returncode == 0 and (job / "result.json").exists(), "rerun finished", f"exit {again.returncode}")
    c.check("resuming from" in log and "last.ckpt" in log, "it resumed from checkpoints/last.ckpt")
    ref_job = job_folders(ref_dir, "mtl-tiny-*/model")[0]
    if (job / "metrics.json").exists():
        ref_m, m = json.loads((ref_job / "metrics.json").read_text()), json.loads((job / "metrics.json").read_text())
        c.check(same_json(ref_job / "metrics.json", job / "metrics.json"),
                "metrics equal the uninterrupted run's, every value",
                f"test F1-macro {m['test']['f1_macro']:.6f} vs {ref_m['test']['f1_macro']:.6f}")
        c.check((ref_job / "predictions_test.csv").read_bytes() == (job / "predictions_test.csv").read_bytes(),
                "test predictions byte-identical")
        ok, detail = same_weights(ref_job / "checkpoints" / "last.ckpt", ckpt)
        c.check(ok, "final weights bit-identical", detail)
    runs = mlflow_runs(dir_)
    c.check(len(runs) == 1 and runs[0].info.status == "FINISHED",
            "one MLflow run (the resumed run continued the killed one), FINISHED",
            f"{len(runs)} run(s): {[r.info.status for r in runs]}")
    return c


# ----------------------------------------------------------------------------- step: sweep
def drill_sweep(base: Path, reference: bool = True, kill_after: int = 3) -> Checks:
    c = Checks(f"kill -9 an STL sweep after {kill_after} jobs finished, rerun the same command")
    dir_ = base / "sweep-killed"
    proc = start_train(dir_, SWEEP, base / "logs" / "sweep-killed-1.log")
    c.say(f"python -m mtlv.train {' '.join(SWEEP)}  (8 jobs, one per label; MTLV_OUTPUT_DIR={dir_})")

    def finished() -> list[Path]:
        return job_folders(dir_, "stl-tiny-*/group-*/result.json")

    try:
        wait_for(lambda: len(finished()) >= kill_after, proc, 1800, f"{kill_after} finished jobs")
    except RuntimeError as err:
        kill_group(proc)
        c.check(False, f"{kill_after} jobs finished before the kill", str(err))
        c.say(tail(base / "logs" / "sweep-killed-1.log"))
        return c
    code = kill_group(proc)
    done = {p.parent.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in finished()}
    c.check(code == -signal.SIGKILL, "SIGKILL sent to the sweep's process group",
            f"exit status {code}; finished: {', '.join(sorted(done))}")
    c.check(not job_folders(dir_, "stl-tiny-*/aggregate.json"), "no aggregate yet (the sweep was cut short)")

    c.say("rerun: the same command")
    again = run_train(dir_, SWEEP, base / "logs" / "sweep-killed-2.log")
    if not c.check(again.returncode == 0, "rerun finished", f"exit {again.returncode}"):
        c.say(tail(base / "logs" / "sweep-killed-2.log"))
        return c
    after = {p.parent.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in finished()}
    untouched = [g for g in done if after.get(g) == done[g]]
    c.check(len(untouched) == len(done), "jobs finished before the kill were not run again",
            f"{len(untouched)}/{len(done)} result.json untouched")
    c.check(len(after) == 8, "every job finished", f"{len(after)}/8, {8 - len(done)} run by the rerun")
    cells = job_folders(dir_, "stl-tiny-*")
    c.check(len(cells) == 1 and (cells[0] / "aggregate.json").exists(), "the cell was aggregated")
    runs = mlflow_runs(dir_)
    jobs = [r for r in runs if r.data.tags.get("mtlv.role") == "job"]
    parents = [r for r in runs if r.data.tags.get("mtlv.role") == "parent"]
    groups = sorted(int(r.data.tags.get("group_index", -1)) for r in jobs)
    c.check(len(parents) == 1 and groups == list(range(8)),
            "MLflow: one parent run and exactly one run per job (none duplicated, none missing)",
            f"{len(parents)} parent, job runs for groups {groups}")
    c.check(all(r.info.status == "FINISHED" for r in runs), "every MLflow run FINISHED",
            ", ".join(sorted({r.info.status for r in runs})))
    if reference and cells:
        ref_dir = base / "sweep-reference"
        c.say(f"reference: the same sweep uninterrupted (MTLV_OUTPUT_DIR={ref_dir})")
        ref = run_train(ref_dir, SWEEP, base / "logs" / "sweep-reference.log")
        ref_cells = job_folders(ref_dir, "stl-tiny-*")
        if c.check(ref.returncode == 0 and len(ref_cells) == 1, "reference sweep finished"):
            c.check(same_json(ref_cells[0] / "metrics.json", cells[0] / "metrics.json"),
                    "aggregated metrics equal the uninterrupted sweep's")
    return c


# ----------------------------------------------------------------------------- step: parallel
def drill_parallel_sweep(base: Path, jobs: int = 4) -> Checks:
    c = Checks(f"STL sweep with {jobs} jobs at once (hydra/launcher=parallel) on the default SQLite store")
    dir_ = base / "sweep-parallel"
    args = SWEEP + ["hydra/launcher=parallel", f"hydra.launcher.n_jobs={jobs}"]
    c.say(f"python -m mtlv.train {' '.join(args)}")
    proc = run_train(dir_, args, base / "logs" / "sweep-parallel.log")
    log = (base / "logs" / "sweep-parallel.log").read_text(encoding="utf-8", errors="replace")
    if not c.check(proc.returncode == 0, "the sweep finished", f"exit {proc.returncode}"):
        c.say(tail(base / "logs" / "sweep-parallel.log"))
    c.check("database is locked" not in log.lower(), "no 'database is locked' anywhere in the output")
    runs = mlflow_runs(dir_)
    jobs_ = [r for r in runs if r.data.tags.get("mtlv.role") == "job"]
    groups = sorted(int(r.data.tags.get("group_index", -1)) for r in jobs_)
    c.check(groups == list(range(8)) and len(runs) == 9, "MLflow: 8 job runs (one per group) + 1 parent",
            f"{len(runs)} runs, groups {groups}")
    complete = [r for r in jobs_ if "test/f1_macro" in r.data.metrics and "env.git_commit" in r.data.params]
    c.check(len(complete) == 8, "every job run holds its metrics and params", f"{len(complete)}/8")
    c.check(all(r.info.status == "FINISHED" for r in runs), "every run FINISHED")
    return c


def drill_writers(base: Path, writers: int = 8, runs_each: int = 2, steps: int = 5) -> Checks:
    c = Checks(f"{writers} processes writing to one fresh SQLite store at the same moment (mtlv.tracking)")
    store = base / "tracking-stress"
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    from mtlv.tracking import sqlite_uri

    uri = sqlite_uri(store / "mlflow.db")
    go = store / "go"
    procs = [subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "_writer", uri, str(i), str(runs_each),
                               str(steps), str(store)], cwd=ROOT, env=env_for(store), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(writers)]
    try:
        wait_for(lambda: len(list(store.glob("ready-*"))) == writers, None, 900, "every writer to start")
    finally:
        go.touch()  # all writers start creating the store and writing at once
    outputs = [p.communicate(timeout=1800)[0] for p in procs]
    failed = [i for i, p in enumerate(procs) if p.returncode != 0]
    c.check(not failed, "every writer finished", f"failed: {failed}" if failed else f"{writers} writers")
    for i in failed[:2]:
        c.say(f"writer {i}:\n" + "\n".join(outputs[i].splitlines()[-15:]))
    c.check(not any("database is locked" in o.lower() for o in outputs), "no 'database is locked' error")
    runs = mlflow_runs(store, "stress")
    names = sorted(r.info.run_name for r in runs)
    expected = sorted(f"w{i}-r{r}" for i in range(writers) for r in range(runs_each))
    c.check(names == expected, "no duplicated or missing runs", f"{len(runs)}/{len(expected)} runs")
    complete = [r for r in runs if len(r.data.params) == 20 and len(r.data.metrics) == 21
                and r.info.status == "FINISHED"]
    c.check(len(complete) == len(expected), "every run has all its params and metrics, FINISHED",
            f"{len(complete)}/{len(expected)}")
    if runs:
        from mtlv import tracking

        history = tracking.client(uri).get_metric_history(runs[0].info.run_id, "loss")
        c.check(len(history) == steps, "metric histories complete", f"{len(history)}/{steps} steps in one run")
    return c


def _writer(uri: str, index: int, runs_each: int, steps: int, store: str) -> None:
    import mlflow.tracking  # noqa: F401  (import first: the barrier below is about the writes, not imports)

    from mtlv import tracking

    Path(store, f"ready-{index}").touch()
    while not Path(store, "go").exists():
        time.sleep(0.02)
    uri = tracking.resolve_uri(uri, None)
    exp = tracking.experiment_id(uri, "stress")
    for r in range(runs_each):
        run_id = tracking.create_run(uri, exp, f"w{index}-r{r}", {"writer": str(index)})
        tracking.log_to_run(uri, run_id, params={f"p{k}": k for k in range(20)},
                            metrics={f"m{k}": k / 2 for k in range(20)})
        for step in range(steps):
            from mlflow.entities import Metric

            tracking.retry_locked(tracking.client(uri).log_batch)(
                run_id, metrics=[Metric("loss", 1.0 / (step + 1), int(time.time() * 1000), step)])
        tracking.end_run(uri, run_id)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_writer"]:
        _writer(argv[1], int(argv[2]), int(argv[3]), int(argv[4]), argv[5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where the drill's runs go (default: a temporary folder, removed when all passed)")
    parser.add_argument("--jobs", type=int, default=4, help="parallel jobs of the parallel sweep (default 4)")
    parser.add_argument("--writers", type=int, default=8, help="concurrent writer processes (default 8)")
    parser.add_argument("--steps", default="run,sweep,parallel", help="which steps (default: run,sweep,parallel)")
    parser.add_argument("--no-reference-sweep", action="store_true",
                        help="skip the uninterrupted reference sweep (faster; the sweep step then checks counts only)")
    args = parser.parse_args(argv)
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(steps) - {"run", "sweep", "parallel"})
    if unknown or args.jobs < 1 or args.writers < 1:
        parser.error(f"unknown steps {unknown}" if unknown else "--jobs and --writers must be at least 1")
    base = (args.output_dir or Path(tempfile.mkdtemp(prefix="mtlv-fault-drill-"))).resolve()
    base.mkdir(parents=True, exist_ok=True)
    print(f"MTLV fault drill in {base} (logs in {base / 'logs'})", flush=True)
    start, results = time.time(), []
    if "run" in steps:
        results.append(drill_run(base))
    if "sweep" in steps:
        results.append(drill_sweep(base, reference=not args.no_reference_sweep))
    if "parallel" in steps:
        results.append(drill_parallel_sweep(base, args.jobs))
        results.append(drill_writers(base, args.writers))
    checks = [r for c in results for r in c.results]
    failed = [f"{c.title}: {what}" for c in results for ok, what, _ in c.results if not ok]
    print(f"\n=== summary ({time.time() - start:.0f} s): {len(checks) - len(failed)}/{len(checks)} checks passed")
    if failed:
        print("FAILED:\n  " + "\n  ".join(failed) + f"\noutputs and logs kept in {base}")
        return 1
    print("nothing finished was lost: killed runs resumed to identical results, killed sweeps reran only "
          "their unfinished jobs, and concurrent logging kept every run exactly once.")
    if args.output_dir is None:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"outputs and logs in {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
