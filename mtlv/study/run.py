"""Running a study's plan: each sweep is `python -m mtlv.train -m ...` (or mtlv.baseline) in a process of its
own, through the launcher the command chose (basic, parallel, SLURM): Hydra and MTLV's sweeper launch, resume
and aggregate its jobs. Its output goes to the study's logs/ folder (and to the console with study.verbose),
while the console shows the study's progress. A sweep that fails does not stop the others; a rerun of the
same command runs only what is missing (the sweeps skip finished jobs).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mtlv.layout import CellLayout
from mtlv.study.plan import Plan
from mtlv.study.progress import Progress, duration


@dataclass
class Outcome:
    failed: list[str] = field(default_factory=list)    # one line per failed sweep, with its errors
    stopped: int | None = None                         # the signal that stopped the study


def needs_run(plan: Plan, index: int) -> bool:
    """A sweep with a job to run, or an STL/GMTL cell not aggregated from its finished jobs yet."""
    jobs = plan.jobs_of(index)
    if any(not j.finished for j in jobs):
        return True
    cells = {j.cell for j in jobs if j.arch in ("stl", "gmtl")}
    return any(not CellLayout(c).aggregate_json.exists() for c in cells)


def errors_of(log: Path, limit: int = 12) -> list[str]:
    """The sweep's own `error:` / `stopped:` lines and the lines that follow them (its failed jobs)."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
    out, taking = [], False
    for line in lines:
        if line.startswith(("error:", "stopped:")):
            taking = True
        elif taking and not line.startswith("  "):
            taking = False
        if taking:
            out.append(line)
    if not out:
        out = [line for line in lines if "Error" in line or "error" in line][-3:]
    return out[:limit] + ([f"  ... ({len(out) - limit} more lines in {log})"] if len(out) > limit else [])


def _pump(stream, log: Path, echo: bool) -> None:
    with open(log, "a", encoding="utf-8") as fh:
        for line in iter(stream.readline, ""):
            fh.write(line)
            fh.flush()
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()


def _die_with_study() -> None:
    """In the sweep's process, before it starts (Linux): SIGTERM it when the study dies, even by SIGKILL, so that
    it stops its jobs as on a signal instead of running on with no one to report to."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG


class _Forward:
    """While a sweep runs: SIGTERM to the study goes on to the sweep, and so does Ctrl-C (the sweep runs in a
    session of its own, so that it gets each signal once, from the study, and stops its jobs, keeping what
    finished)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.signum: int | None = None
        self._previous = None

    def __enter__(self) -> "_Forward":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._term)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def _term(self, signum, frame) -> None:
        self.signum = signum
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)


def run_plan(plan: Plan, progress: Progress, logs: Path, verbose: bool = False, env: dict | None = None) -> Outcome:
    outcome = Outcome()
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
    todo = [i for i in range(len(plan.sweeps)) if needs_run(plan, i)]
    with progress, _Forward() as forward:
        for n, index in enumerate(todo, 1):
            sweep, jobs = plan.sweeps[index], plan.jobs_of(index)
            log = logs / f"{index + 1:02d}-{sweep.name}.log"
            left = sum(1 for j in jobs if not j.finished)
            progress.say(f"sweep {n}/{len(todo)} {sweep.name}: {len(jobs)} jobs, {left} to run · log: {log}")
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(sweep.command()[1:])}\n")
            start = time.time()
            try:
                proc = subprocess.Popen(sweep.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=env, bufsize=1, errors="replace", start_new_session=True,
                                        preexec_fn=_die_with_study)
                forward.proc = proc
                pump = threading.Thread(target=_pump, args=(proc.stdout, log, verbose), daemon=True)
                pump.start()
                code = proc.wait()
                pump.join(timeout=30)
            except KeyboardInterrupt:  # Ctrl-C: the sweep got it too, stops its jobs and says so in its log
                code = _wait_after_interrupt(forward.proc)
                outcome.stopped = signal.SIGINT
            forward.proc = None
            stopped = (outcome.stopped is not None or forward.signum is not None
                       or code in (130, 143, -signal.SIGINT, -signal.SIGTERM))
            progress.sweep_ended(index, stopped)
            if stopped:
                outcome.stopped = outcome.stopped or forward.signum or signal.SIGTERM
                progress.say(f"sweep {sweep.name} stopped after {duration(time.time() - start)}")
                break
            if code != 0:
                lines = errors_of(log)
                outcome.failed.append(f"{sweep.name} (exit {code}; log: {log}):\n" + "\n".join(
                    f"    {line}" for line in lines))
                progress.say(f"sweep {sweep.name} ended with errors after {duration(time.time() - start)}:")
                for line in lines:
                    print(f"    {line}", file=progress.out, flush=True)
            else:
                progress.say(f"sweep {sweep.name} finished in {duration(time.time() - start)}")
    return outcome


def _wait_after_interrupt(proc: subprocess.Popen | None) -> int:
    if proc is None:
        return 130
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=600)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):  # a second Ctrl-C, or a sweep that hangs
        proc.kill()
        return proc.wait()
