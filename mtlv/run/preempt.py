"""Stopping a training job at a batch boundary when it is told to (`PreemptionCheckpoint`).

On SIGUSR1 (SLURM's `--signal`, before the time limit or on pre-emption) or, under SLURM or in a plain job
(`sigterm=True`), SIGTERM (`scontrol requeue`, pre-emption, scancel; `kill`, `timeout`), it saves `last.ckpt`
at the next batch boundary and exits (`Preempted`); after SIGUSR1 it also requeues the SLURM job. The
resumed run skips the batches of that epoch already trained on, so it ends exactly as an uninterrupted run
would. The stop itself (`Preempted`, the exit code, the `stopped:` line) is mtlv/run/stop.py's; the
checkpoint policy and writer are mtlv/run/checkpoint.py's.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import warnings
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

from mtlv.run.checkpoint import CheckpointError
from mtlv.run.stop import Preempted, under_slurm

log = logging.getLogger(__name__)


class PreemptionCheckpoint(Callback):
    """Save `path` (last.ckpt) when the job is told to stop, at a batch boundary, then exit.

    Lightning's own SLURM handler (SLURMEnvironment auto_requeue) saves from inside the signal handler,
    wherever training happens to be (between backward and the optimizer step, say), into an
    hpc_ckpt file shared by every job of the sweep; MTLV turns it off and does this instead.
    `sigterm=True` (a plain job, mtlv/run/stop.py): SIGTERM too, also outside SLURM, in place of
    Lightning's handler, which would end fit early as if it had finished (exit 0, no checkpoint of the
    stop); a second SIGTERM, or a stop signalled at the last batch, ends it at once / when fit ends.
    """

    def __init__(self, path: str | os.PathLike, sigterm: bool = False) -> None:
        self.path = Path(path)
        self.sigterm = sigterm
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _note(self, signum, frame) -> None:
        again = self.received is not None
        self.received = signum
        if again and self.sigterm and callable(previous := self._previous.get(signum)):
            previous(signum, frame)  # told twice: stop now (the plain job's handler raises)

    def on_train_start(self, trainer, pl_module) -> None:
        # Not under DDP outside SLURM: the other ranks are not told, and saving is collective.
        sigterm = under_slurm() or (self.sigterm and trainer.world_size == 1)
        signals = [signal.SIGUSR1] + ([signal.SIGTERM] if sigterm else [])
        self._previous = {s: signal.signal(s, self._note) for s in signals}
        # A mid-epoch checkpoint: the first `done` batches of this epoch are already trained on.
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        loader = trainer.train_dataloader
        if trainer.fit_loop.restarting and 0 < done < trainer.num_training_batches:
            if not hasattr(getattr(loader, "sampler", None), "resume_at"):
                raise CheckpointError(f"{self.path} was saved mid-epoch, but the training data loader cannot skip "
                                      "the batches already trained on; delete it to retrain the job")
            loader.sampler.resume_at(trainer.current_epoch, done * loader.batch_size)
            # Lightning cannot see that MTLV's sampler resumes, and warns that the loader does not.
            warnings.filterwarnings("ignore", message=r".*checkpoint that ended before the epoch ended.*")
            log.info("resuming epoch %d after batch %d", trainer.current_epoch, done)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # Not in the middle of gradient accumulation, nor at the epoch's last batch (validation and
        # the epoch-end checkpoint come next; the signal is acted on at the next batch instead).
        if (self.received is None or (batch_idx + 1) % trainer.accumulate_grad_batches
                or batch_idx + 1 >= trainer.num_training_batches):
            return
        for callback in trainer.checkpoint_callbacks:  # ModelCheckpoint owns last.ckpt: tell it this one is its
            if getattr(callback, "save_last", False) and Path(callback.dirpath or "") == self.path.parent:
                callback.last_model_path = str(self.path)  # own (saved in the checkpoint), or it writes last-v1
        trainer.save_checkpoint(self.path)
        name = signal.Signals(self.received).name
        log.warning("%s: saved %s (epoch %d, batch %d); rerunning the same command resumes from it",
                    name, self.path, trainer.current_epoch, batch_idx + 1)
        if self.received == signal.SIGUSR1 and os.environ.get("SLURM_JOB_ID") and trainer.is_global_zero:
            _requeue()
        raise Preempted(self.received, self.path, trainer.current_epoch, batch_idx + 1)

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore()
        if self.sigterm and self.received == signal.SIGTERM:  # it came too late to act on (the last batch):
            raise Preempted(signal.SIGTERM, self.path, trainer.current_epoch, None)  # stop before evaluating

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


def _requeue() -> None:
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else os.environ["SLURM_JOB_ID"]
    proc = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    if proc.returncode <= 0:  # < 0: killed with the job it just requeued
        log.warning("requeued SLURM job %s; it resumes from the checkpoint when it runs again", job)
    else:
        log.warning("could not requeue SLURM job %s (%s); rerun the same command to resume", job,
                    " ".join(proc.stderr.split())[:200])
