"""Stopping a job or a sweep from outside: SIGTERM (`kill`, `timeout`, `docker stop`, systemd) or Ctrl-C.

A plain job (`python -m mtlv.train`, not one job of a sweep, not under SLURM), `StopJob`: SIGTERM during
training saves `last.ckpt` at the next batch boundary (PreemptionCheckpoint, mtlv/run/preempt.py),
elsewhere (loading, evaluating) and on Ctrl-C it stops at once; either way the job exits with 128 +
the signal (143, 130), as a shell reports a process the signal ended, and prints one `stopped:` line
that says what is kept. Left to Lightning, SIGTERM ended fit as if it had finished: the job exited 0
with no result, so a scheduler counted a killed job as done; Ctrl-C exited 1.

A sweep, `StopOnSigterm`:

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

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path


class Preempted(SystemExit):
    """A job told to stop saved `path` (`batch` None: at the end of training) and exits with 128 + signum."""

    def __init__(self, signum: int, path: Path, epoch: int, batch: int | None) -> None:
        super().__init__(128 + signum)
        self.signum, self.path, self.epoch, self.batch = signum, path, epoch, batch


def under_slurm() -> bool:
    """Started by SLURM (srun), as Lightning's SLURMEnvironment.detect() sees it, minus its warning."""
    return "SLURM_NTASKS" in os.environ and os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive")


class Redeliver:
    """While in force: a stop that Python swallowed is delivered again.

    An exception raised from a signal handler is lost when the signal lands while Python runs a weakref
    callback or a `__del__`: Python hands it to `sys.unraisablehook` ("Exception ignored in ...") and goes on.
    That is common just as one job ends and the next starts in a sweep's process (the basic launcher), which
    then ran every job left. So an exception of `kind` that reaches the hook is delivered again as its signal,
    from outside the callback, and only then: a stop raised for good must not be interrupted in its clean-up
    (joblib ending its workers)."""

    def __init__(self, kind: type[BaseException]) -> None:
        self.kind = kind
        self.signum: int | None = None     # the signal to deliver again (the handler sets it)
        self._hook = None
        self._over = threading.Event()

    def __enter__(self) -> "Redeliver":
        self._hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def __exit__(self, *exc) -> None:
        self._over.set()
        if self._hook is not None:  # entered (only the main thread sets signal handlers)
            sys.unraisablehook, self._hook = self._hook, None

    def _unraisable(self, info) -> None:
        if not isinstance(info.exc_value, self.kind) or self.signum is None:
            self._hook(info)
            return
        main, signum = threading.main_thread().ident, self.signum

        def again() -> None:
            if not self._over.is_set():
                signal.pthread_kill(main, signum)

        threading.Timer(0.05, again).start()


class SweepStopped(KeyboardInterrupt):
    """SIGTERM reached the sweeper: a KeyboardInterrupt, so that a launcher aborts its jobs as on Ctrl-C."""


class StopOnSigterm:
    """While a sweep launches its jobs: SIGTERM stops the sweep; `stopped_by` names what ended it.

    Between jobs, and while the sweeper only waits for its workers (joblib), the handler raises SweepStopped
    at once (delivered again if Python swallowed it, `Redeliver`). While a job runs in this process (the
    basic launcher, `sweep_job`), raising anywhere is unsafe: inside torch's checkpoint writer the exception
    became a RuntimeError and the job was recorded as failed while the sweep went on. So there the handler
    only notes the signal: Lightning, which sees it too, stops its loop at the next batch (SIGTERMException),
    and the job otherwise ends normally and the sweep stops after it, its result kept."""

    active: "StopOnSigterm | None" = None   # the sweep this process runs (signal handlers are per process)

    def __init__(self) -> None:
        self.signum: int | None = None
        self.in_job = False
        self._previous = None
        self._again = Redeliver(SweepStopped)

    def __enter__(self) -> "StopOnSigterm":
        # Signal handlers can only be set from the main thread (a sweep run from a test's thread: leave it).
        if not under_slurm() and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._stop)
            self._again.__enter__()
            StopOnSigterm.active = self
        return self

    def __exit__(self, *exc) -> None:
        self._again.__exit__()
        if self._previous is not None:
            StopOnSigterm.active = None
            signal.signal(signal.SIGTERM, self._previous)

    def _stop(self, signum, frame) -> None:
        self.signum = self._again.signum = signum
        if not self.in_job:
            raise SweepStopped(signal.Signals(signum).name)

    def check(self) -> None:
        """A safe point (a job starts or has ended): stop here if the signal came."""
        if self.signum is not None:
            raise SweepStopped(signal.Signals(self.signum).name)

    def stopped_by(self, err: BaseException) -> signal.Signals | None:
        """The signal that ended the sweep with `err`, or None when something else did. A job that runs in
        this process (the basic launcher) turns the KeyboardInterrupt into a SystemExit (Lightning exits
        after a graceful shutdown), hence the signal noted here, not the exception's type."""
        if self.signum is not None:
            return signal.Signals(self.signum)
        return signal.SIGINT if isinstance(err, KeyboardInterrupt) else None


class JobStopped(KeyboardInterrupt):
    """SIGTERM reached a plain job outside training: it stops at once, as on Ctrl-C."""


class StopJob:
    """While a plain job runs: SIGTERM and SIGINT end it with exit 128 + signal and one `stopped:` line.
    `StopJob.active` is the one in force (signal handlers belong to the process): the job tells it its
    checkpoint (`watch`) and asks it whether SIGTERM is to be saved on (`mtlv.run.job.build_trainer`)."""

    active: "StopJob | None" = None

    def __init__(self) -> None:
        self.signum: int | None = None
        self.checkpoint: Path | None = None
        self._previous: dict[int, object] = {}
        self._again = Redeliver(JobStopped)

    def __enter__(self) -> "StopJob":
        if threading.current_thread() is threading.main_thread():
            # A job started in the background (`cmd &`, nohup) has SIGINT ignored: the terminal's Ctrl-C is not
            # for it, and it stays so (as Python itself leaves an ignored SIGINT alone).
            ours = [s for s in (signal.SIGTERM, signal.SIGINT)
                    if not (s == signal.SIGINT and signal.getsignal(s) is signal.SIG_IGN)]
            self._previous = {s: signal.signal(s, self._stop) for s in ours}
            self._again.__enter__()
        StopJob.active = self
        return self

    def _stop(self, signum, frame) -> None:
        self.signum = self._again.signum = signum
        raise JobStopped(signal.Signals(signum).name)

    def watch(self, checkpoint: Path) -> None:
        """Training starts: a stop from now on keeps `checkpoint` (when written), and a rerun resumes from it."""
        self.checkpoint = Path(checkpoint)

    def __exit__(self, kind, err, tb) -> None:
        StopJob.active = None
        self._again.__exit__()
        for signum, handler in self._previous.items():  # Lightning leaves SIGINT ignored after a Ctrl-C
            signal.signal(signum, handler)
        if isinstance(err, Preempted):
            signum = err.signum
        elif isinstance(err, (KeyboardInterrupt, SystemExit)):  # Lightning turns Ctrl-C into exit(1)
            signum = self.signum or (signal.SIGINT if isinstance(err, KeyboardInterrupt) else None)
        elif err is not None and self.signum is not None:
            # the stop, raised inside a library that turned it into its own error (torch's file writer gives
            # a RuntimeError): still the stop, not a failure
            signum = self.signum
        else:
            return
        if signum is None:
            return
        print(f"stopped: {signal.Signals(signum).name} ended the job; {self._kept(err)}", file=sys.stderr,
              flush=True)
        raise SystemExit(128 + signum) from None

    def _kept(self, err: BaseException) -> str:
        if isinstance(err, Preempted) and err.path.exists():
            where = "the end of training" if err.batch is None else f"epoch {err.epoch}, after batch {err.batch}"
            return (f"its state at {where} is saved in {err.path}, and rerunning the same command resumes "
                    "from there")
        if self.checkpoint is not None and self.checkpoint.exists():
            return (f"its last checkpoint, {self.checkpoint}, is kept, and rerunning the same command resumes "
                    "from it")
        if self.checkpoint is not None:
            return "it had saved no checkpoint yet; rerunning the same command starts its training again"
        return "training had not begun, so nothing is lost; rerunning the same command runs it"


@contextlib.contextmanager
def sweep_job(sweep: StopOnSigterm):
    """One job of a sweep, run in the sweeper's own process: a SIGTERM is only noted while it runs, and acted
    on before it starts and once it has ended (StopOnSigterm)."""
    sweep.check()
    sweep.in_job = True
    try:
        yield
    finally:
        sweep.in_job = False
    sweep.check()


def stop_job() -> contextlib.AbstractContextManager:
    """StopJob for a plain job; in one job of a sweep, `sweep_job` where the sweep runs in this process (the
    basic launcher), else nothing (the sweeper ends its workers); nothing under SLURM (where SIGTERM is the
    pre-emption notice, PreemptionCheckpoint's)."""
    from mtlv.errors import in_sweep_job

    if under_slurm():
        return contextlib.nullcontext()
    if in_sweep_job():
        return sweep_job(StopOnSigterm.active) if StopOnSigterm.active is not None else contextlib.nullcontext()
    return StopJob()


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
