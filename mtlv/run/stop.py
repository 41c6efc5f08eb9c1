"""Stopping a sweep from outside: SIGTERM (`kill`, `timeout`, `docker stop`, systemd) ends it as Ctrl-C does.

Without this, SIGTERM ends only the sweeper's own process. The jobs a parallel launcher (joblib) runs in
worker processes go on: Lightning's SIGTERM handler turns the signal into a SystemExit at the next batch,
which ends the current job only, and the worker then takes the next job queued to it, and so on, with no
parent left to report to. Turned into a KeyboardInterrupt in the sweeper, the signal makes joblib abort and
kill its workers, as it does on Ctrl-C. Jobs that finished are kept either way; a rerun runs the rest.

Under SLURM, SIGTERM is the notice of pre-emption, of the time limit or of scancel: each job's
PreemptionCheckpoint answers it by saving, and SLURM kills what is left after its grace time; it is left
alone there.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

from mtlv.run.checkpoint import under_slurm


class SweepStopped(KeyboardInterrupt):
    """SIGTERM reached the sweeper: a KeyboardInterrupt, so that a launcher aborts its jobs as on Ctrl-C."""


class StopOnSigterm:
    """While a sweep launches its jobs: SIGTERM raises SweepStopped; `stopped_by` names what ended it."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous = None

    def __enter__(self) -> "StopOnSigterm":
        # Signal handlers can only be set from the main thread (a sweep run from a test's thread: leave it).
        if not under_slurm() and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._stop)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def _stop(self, signum, frame) -> None:
        self.signum = signum
        raise SweepStopped(signal.Signals(signum).name)

    def stopped_by(self, err: BaseException) -> signal.Signals | None:
        """The signal that ended the sweep with `err`, or None when something else did. A job that runs in
        this process (the basic launcher) turns the KeyboardInterrupt into a SystemExit (Lightning exits
        after a graceful shutdown), hence the signal noted here, not the exception's type."""
        if self.signum is not None:
            return signal.Signals(self.signum)
        return signal.SIGINT if isinstance(err, KeyboardInterrupt) else None


def die_with_sweeper() -> None:
    """In a joblib (loky) worker on Linux: have the kernel SIGKILL this process when the sweeper dies.

    A sweeper that gets SIGKILL (`kill -9`, the out-of-memory killer) runs no handler, so its workers
    are never told: they finish the job at hand and then wait, with no parent, holding their memory
    (1.6 GB each for a MiniLM job) until someone kills them. prctl(PR_SET_PDEATHSIG) is Linux's own
    way to tie a child's life to its parent's; elsewhere, or where prctl is refused, nothing changes."""
    import multiprocessing

    if not sys.platform.startswith("linux") or not multiprocessing.current_process().name.startswith("LokyProcess"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    sweeper = multiprocessing.parent_process()
    if sweeper is not None and os.getppid() != sweeper.pid:  # it died before this job began: no one waits for it
        os.kill(os.getpid(), signal.SIGKILL)
