"""Fault injection for drills and tests: stop a training job at an exact point mid-epoch.

Add it to any run as an extra callback (fault callbacks, like progress bars, are left out of a
job's identity, so the rerun without it resumes the same job folder):

    python -m mtlv.train model=tiny '+callbacks.fault={_target_:mtlv.run.faults.KillAt,epoch:1,batch:2}'

`action=kill` (default) sends SIGKILL to the job's own process: nothing is flushed, no
`finally` runs, exactly as when a node dies or the OOM killer strikes. `action=wait` writes
`marker` and blocks, so that a drill can deliver the SIGKILL from outside (to the whole
process group); after `wait_s` it kills itself anyway. `action=pause` writes `marker` and waits
until the job is told to stop (SIGUSR1, or SLURM's SIGTERM, noted by PreemptionCheckpoint), so that
a drill can pre-empt it from outside (`scancel --signal=USR1`, `scontrol requeue`) at an exact
point; the job then saves and exits as on a real pre-emption. `action=signal` sends itself SIGUSR1
(the notice SLURM's `--signal` sends) and carries on. `action=raise` raises `InjectedFault`
(an in-process crash, for fast tests). `action=hold` writes `marker`, waits until the file
`release` exists (at most `wait_s`), then carries on training: a test holds a job at an exact point
while it starts another process on it. A `marker` ending in "/" is a folder that gets one file per
job, named by its process id (the jobs of a parallel sweep). `label=...` limits the fault to the
job(s) that train that label, e.g. one group job of an STL/GMTL sweep.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import lightning as L


class InjectedFault(RuntimeError):
    """The crash asked for by KillAt(action='raise')."""


class KillAt(L.Callback):
    def __init__(self, epoch: int = 1, batch: int = 1, action: str = "kill", marker: str | None = None,
                 wait_s: float = 600.0, label: str | None = None, release: str | None = None) -> None:
        if action not in ("kill", "wait", "pause", "signal", "raise", "hold"):
            raise ValueError(f"KillAt: action={action!r}; use kill, wait, pause, signal, raise or hold")
        if action == "hold" and not release:
            raise ValueError("KillAt: action=hold needs release=<file whose creation lets the job go on>")
        self.epoch, self.batch, self.action = int(epoch), int(batch), action
        self.marker, self.wait_s, self.release = marker, float(wait_s), release
        self.label = label  # only in a job that trains this label (e.g. one group of a sweep)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.current_epoch != self.epoch or batch_idx + 1 != self.batch:
            return
        if self.label is not None and self.label not in getattr(pl_module, "label_names", []):
            return
        where = f"epoch {self.epoch}, after batch {self.batch}"
        if self.action == "raise":
            raise InjectedFault(f"injected fault at {where}")
        if self.action == "signal":
            os.kill(os.getpid(), signal.SIGUSR1)
            return
        if self.action in ("wait", "pause", "hold"):
            if self.marker:
                # A marker ending in "/" is a folder with one file per job, named by its process id:
                # parallel jobs of one sweep do not overwrite each other's.
                marker = Path(self.marker) / str(os.getpid()) if self.marker.endswith("/") else Path(self.marker)
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text(f"{os.getpid()} {where}\n", encoding="utf-8")
            deadline = time.time() + self.wait_s
            while time.time() < deadline:
                if self.action == "pause" and any(getattr(cb, "received", None) for cb in trainer.callbacks):
                    return
                if self.action == "hold" and Path(self.release).exists():
                    return
                time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGKILL)
