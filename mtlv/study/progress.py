"""A study's progress: one line per event (a job done or failed, a sweep started or ended), and a line every
few minutes while nothing happens, each with the totals and an ETA. No carriage-return redraws: the lines read
the same in a terminal and in a log file (a SLURM .out).

The jobs are watched through their folders (result.json: finished; failed.json: failed), so it works with
every launcher: jobs in this machine's processes, or on SLURM nodes that share the file system.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from mtlv.study.plan import Job, Plan


def duration(seconds: float) -> str:
    """12 s, 4m05s, 2h03m."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # not there, or being replaced this instant: the next poll reads it
        return None


@dataclass
class Progress:
    plan: Plan
    estimates: dict[Path, float]            # job folder -> estimated seconds (jobs that train)
    workers: int = 1                        # jobs that run at once (the launcher's)
    out: TextIO = field(default_factory=lambda: sys.stdout)
    clock: Callable[[], float] = time.time
    quiet_s: float = 300.0                  # a status line after this long without an event
    queue_file: Path | None = None          # where a SLURM sweep says why its jobs wait (mtlv/run/slurm.py)

    def __post_init__(self) -> None:
        self.start = self.clock()
        self.last_line = self.start
        self.state = {j.folder: ("done" if j.finished else "todo") for j in self.plan.jobs}
        self.failed_at: dict[Path, float] = {}
        self.halted = False                 # a signal stopped a sweep: what is left waits for the rerun
        self.actual: dict[Path, float] = {}   # job folder -> seconds it took in this run (trained here)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()       # one line at a time
        self._polling = threading.RLock()   # the watcher thread and the study's own calls
        self.queue = ""                     # the last queue line shown

    # counts -------------------------------------------------------------------------------------------
    def counts(self) -> tuple[int, int, int]:
        states = list(self.state.values())
        return states.count("done"), states.count("failed"), len(states)

    def not_run(self) -> int:
        """Jobs a stop left to the next run (those of the stopped sweep and of the sweeps after it)."""
        return sum(1 for s in self.state.values() if s in ("stopped", "todo")) if self.halted else 0

    def eta(self) -> float | None:
        """Seconds left: the estimates of the jobs still to train, scaled by how the jobs trained in this run
        compared with their estimates, shared among the workers. None when nothing is known."""
        left = [self.estimates[f] for f, s in self.state.items() if s == "todo" and f in self.estimates]
        if not left:
            return 0.0 if all(s != "todo" for s in self.state.values()) else None
        done = [f for f in self.actual if f in self.estimates and self.estimates[f] > 0]
        scale = (sum(self.actual[f] for f in done) / sum(self.estimates[f] for f in done)) if done else 1.0
        return sum(left) * scale / max(1, self.workers)

    def status(self) -> str:
        done, failed, total = self.counts()
        eta = self.eta()
        stopped = self.not_run()
        parts = [f"{done}/{total} jobs done" + (f", {failed} failed" if failed else "")
                 + (f", {stopped} left for the rerun" if stopped else ""),
                 f"elapsed {duration(self.clock() - self.start)}"]
        if eta is not None and "todo" in self.state.values() and not self.halted:
            parts.append(f"ETA ~{duration(eta)}")
        if self.queue:
            parts.append(self.queue)
        return " · ".join(parts)

    def _queue_changed(self) -> bool:
        """Whether why the SLURM jobs wait changed (the sweep writes it to queue_file)."""
        try:
            text = self.queue_file.read_text(encoding="utf-8").strip() if self.queue_file else ""
        except OSError:
            text = ""
        changed, self.queue = text != self.queue, text
        return changed and bool(text)

    def say(self, text: str) -> None:
        with self._lock:
            stamp = time.strftime("%H:%M:%S", time.localtime(self.clock()))
            print(f"[study {stamp}] {text}", file=self.out, flush=True)
            self.last_line = self.clock()

    # events -------------------------------------------------------------------------------------------
    def poll(self) -> list[str]:
        """Look at the jobs not finished yet; print and return one line per new event."""
        with self._polling:
            return self._poll()

    def _poll(self) -> list[str]:
        lines = []
        for job in self.plan.jobs:
            state = self.state[job.folder]
            if state == "done":
                continue
            result = _read(job.folder / "result.json") if (job.folder / "result.json").exists() else None
            if result is not None and result.get("end", self.start + 1) >= self.start - 1:
                self.state[job.folder] = "done"
                if "reused_from" not in result and job.trains:
                    self.actual[job.folder] = float(result.get("elapsed_s", 0.0))
                lines.append(self._done_line(job, result))
                continue
            failed = _read(job.folder / "failed.json") if (job.folder / "failed.json").exists() else None
            if failed is not None and failed.get("time", 0) >= self.start and self.failed_at.get(job.folder) != failed["time"]:
                self.state[job.folder] = "failed"
                self.failed_at[job.folder] = failed["time"]
                lines.append(f"FAILED {job.title}: {failed.get('error', '?')}")
        for line in lines:
            self.say(f"{line} · {self.status()}")
        if self._queue_changed() and not lines:
            self.say(f"waiting · {self.status()}")
        elif not lines and self.clock() - self.last_line >= self.quiet_s:
            self.say(f"running · {self.status()}")
        return lines

    def _done_line(self, job: Job, result: dict) -> str:
        f1 = (result.get("test") or {}).get("f1_macro")
        how = ("reused " + str(result["reused_from"]).split("/")[-2] if "reused_from" in result
               else duration(float(result.get("elapsed_s", 0.0))))
        score = f"test F1-macro {f1:.3f}" if isinstance(f1, (int, float)) else "done"
        return f"done {job.title}: {score} ({how})"

    def sweep_ended(self, index: int, stopped: bool = False) -> None:
        """Jobs of a sweep that ended without a result failed (e.g. before their folder was made); those of a
        sweep that a signal stopped were not run, and the next run of the study runs them."""
        with self._polling:
            self._poll()
            for job in self.plan.jobs_of(index):
                if self.state[job.folder] == "todo":
                    self.state[job.folder] = "stopped" if stopped else "failed"
            self.halted = self.halted or stopped

    # the watcher thread -------------------------------------------------------------------------------
    def __enter__(self) -> "Progress":
        def watch() -> None:
            while not self._stop.wait(2.0):
                self.poll()

        self._thread = threading.Thread(target=watch, name="mtlv-study-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.poll()
