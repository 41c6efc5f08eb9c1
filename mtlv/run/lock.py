"""One process trains a job at a time: a second command on the same job folder waits for the first.

Two identical commands on one output folder (a resubmitted SLURM script, two terminals, two sweeps
that share cells) used to train the same job at once: doubled work, MLflow runs marked KILLED by the
other process, and stray `best-v1.ckpt`/`last-v1.ckpt` files. Now the job holds `job.lock` (an OS
file lock, `filelock`) from the check "is it finished?" to `result.json`. A second process logs who
holds it and waits; when it gets the lock it finds the job finished (and prints its saved result) or,
if the holder died, resumes it from its checkpoint. The OS drops the lock of a process that dies, even
by SIGKILL, so a dead holder never blocks anyone.

No deadlock: a process holds one job lock at a time (a sweep's jobs run one after another in a
process), and holds no other lock while waiting for it. The ranks > 0 of a multi-process (DDP) job
run the job rank 0 holds the lock for: they do not take it (they would wait for rank 0 forever).
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from typing import Iterator

from filelock import FileLock, Timeout

from mtlv.io import read_json, write_json
from mtlv.layout import JobLayout

log = logging.getLogger(__name__)

RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK")


def secondary_rank() -> bool:
    """A process of a multi-process (DDP) job other than the global rank 0, as its launcher tells it."""
    return any(os.environ.get(name, "0") not in ("", "0") for name in RANK_VARIABLES)


def holder(job: JobLayout) -> str:
    """Who holds the job's lock, as its holder wrote it (pid and host)."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        owner = read_json(job.lock_owner)
        return f"pid {owner['pid']} on host {owner['host']}"
    return "pid unknown"


@contextlib.contextmanager
def job_lock(job: JobLayout) -> Iterator[None]:
    """Hold the job's lock for the block, waiting (with one log line) while another process holds it."""
    if secondary_rank():
        yield
        return
    job.mkdir()
    lock = FileLock(str(job.lock))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.warning("job %s is being trained by another process (%s); waiting", job.folder, holder(job))
        lock.acquire()  # no timeout: the holder's training may take days, and its death releases the lock
    try:
        write_json(job.lock_owner, {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        yield
    finally:
        with contextlib.suppress(OSError):
            job.lock_owner.unlink()
        lock.release()
