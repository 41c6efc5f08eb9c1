"""Checkpoints that a killed job can always resume from, and that never unpickle arbitrary objects.

* `ModelCheckpoint`: Lightning's callback, except that `last.ckpt` follows MTLV's policy: at the
  end of every `last_every_n_epochs`-th epoch, or (`last_every_minutes` > 0) at the first epoch end
  at least that long after the previous one, and always at the end of fit. Lightning >= 2.5 writes
  `last.ckpt` only when the monitored metric also produced a top-k checkpoint, so a job killed at
  epoch 9 whose best epoch was 3 would restart from epoch 3. The top-k (`best.ckpt`) file holds
  weights only (`best_weights_only`): it is only ever loaded for its weights, and the optimizer
  state would triple its size (MiniLM ~90 MB -> ~270 MB, BERT-base ~440 MB -> ~1.3 GB).
  `save_last_now(trainer)` writes `last.ckpt` at once, for a pre-emption (signal) handler.
* `AtomicCheckpointIO`: writes each checkpoint to a temporary file in the checkpoint's own folder,
  fsyncs it and renames it into place. Lightning's own writer stages the file in the system temp
  folder and *moves* it, which is a non-atomic copy when /tmp is another filesystem (typical on
  clusters: local /tmp, shared output folder), and it leaves the staged file behind on a kill.
  It also loads with `weights_only=True` whatever the caller asks for.
* `PreemptionCheckpoint`: on SIGUSR1 (SLURM's `--signal`, before the time limit or on pre-emption)
  or, under SLURM or in a plain job (`sigterm=True`), SIGTERM (`scontrol requeue`, pre-emption, scancel;
  `kill`, `timeout`), saves `last.ckpt` at the next batch boundary and exits (`Preempted`); after SIGUSR1
  it also requeues the SLURM job. The resumed run skips the batches of that epoch already trained on, so
  it ends exactly as an uninterrupted run would.
* `verify_checkpoint`: checked before resuming; a truncated or non-tensor (pickled code)
  checkpoint is refused with a message that names the file and says what to do.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import subprocess
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.callbacks import ModelCheckpoint as _LightningModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from mtlv.errors import MTLVError

log = logging.getLogger(__name__)


class CheckpointError(MTLVError, RuntimeError):
    """A checkpoint cannot be trusted or read."""


class ModelCheckpoint(_LightningModelCheckpoint):
    """`ModelCheckpoint` whose `save_last` saves on MTLV's policy (see the module docstring)."""

    def __init__(self, *args, last_every_n_epochs: int = 1, last_every_minutes: float = 0.0,
                 best_weights_only: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if int(last_every_n_epochs) < 1 or float(last_every_minutes) < 0:
            raise ValueError(f"callbacks.model_checkpoint: last_every_n_epochs={last_every_n_epochs} must be >= 1 "
                             f"and last_every_minutes={last_every_minutes} >= 0")
        self.last_every_n_epochs, self.last_every_minutes = int(last_every_n_epochs), float(last_every_minutes)
        self.best_weights_only = best_weights_only
        self._last_written_at = time.monotonic()
        self._force_last = False

    def _last_due(self, trainer) -> bool:
        epochs, steps = trainer.current_epoch + 1, trainer.max_steps if trainer.max_steps > 0 else float("inf")
        if (self._force_last or trainer.should_stop or epochs >= (trainer.max_epochs or float("inf"))
                or trainer.global_step >= steps):
            return True  # the end of fit: a rerun must find the finished state
        if self.last_every_minutes > 0:
            return time.monotonic() - self._last_written_at >= 60 * self.last_every_minutes
        return epochs % self.last_every_n_epochs == 0

    def _save_last_checkpoint(self, trainer, monitor_candidates) -> None:
        if self._last_due(trainer):
            super()._save_last_checkpoint(trainer, monitor_candidates)
            self._last_written_at = time.monotonic()

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        full = self.save_weights_only
        if self.best_weights_only and filepath != self.last_model_path:
            self.save_weights_only = True
        try:
            super()._save_checkpoint(trainer, filepath)
        finally:
            self.save_weights_only = full

    def save_last_now(self, trainer) -> None:
        """Write `last.ckpt` now, whatever the policy (for a handler of SLURM's pre-emption signal)."""
        self._force_last = True
        try:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        finally:
            self._force_last = False

    def _ensure_last(self, trainer) -> None:
        # After the parent saved top-k (and then last) at this step, the skip check is true.
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._ensure_last(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._ensure_last(trainer)


class Preempted(SystemExit):
    """A job told to stop saved `path` (`batch` None: at the end of training) and exits with 128 + signum."""

    def __init__(self, signum: int, path: Path, epoch: int, batch: int | None) -> None:
        super().__init__(128 + signum)
        self.signum, self.path, self.epoch, self.batch = signum, path, epoch, batch


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


def under_slurm() -> bool:
    """Started by SLURM (srun), as Lightning's SLURMEnvironment.detect() sees it, minus its warning."""
    return "SLURM_NTASKS" in os.environ and os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive")


def _requeue() -> None:
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else os.environ["SLURM_JOB_ID"]
    proc = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    if proc.returncode <= 0:  # < 0: killed with the job it just requeued
        log.warning("requeued SLURM job %s; it resumes from the checkpoint when it runs again", job)
    else:
        log.warning("could not requeue SLURM job %s (%s); rerun the same command to resume", job,
                    " ".join(proc.stderr.split())[:200])


class AtomicCheckpointIO(TorchCheckpointIO):
    """Temp file beside the target, fsync, rename: a checkpoint file is either whole or absent."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as fh:
                torch.save(checkpoint, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        _fsync_dir(path.parent)

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict:
        if map_location is None:
            map_location = "cpu"
        return torch.load(path, map_location=map_location, weights_only=True)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def verify_checkpoint(path: str | os.PathLike) -> None:
    """Raise CheckpointError unless `path` is a complete checkpoint of tensors and plain values."""
    path = Path(path)
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"refusing to load {path}: it holds Python objects other than tensors and plain values, "
            f"which could run code when unpickled ({' '.join(str(err).split())[:300]}). MTLV never writes such "
            f"checkpoints. If you did not put it there, delete it (and check who can write to "
            f"{path.parent}); the job then retrains from the start.") from err
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        raise CheckpointError(
            f"cannot read checkpoint {path} ({' '.join(str(err).split())[:300]}): it is truncated or corrupt. "
            f"Delete it to retrain the job from the start (the other files in {path.parent} are not "
            f"needed to resume).") from err


def clear_stale_checkpoints(folder: str | os.PathLike) -> None:
    """A job that starts from scratch must not find an older run's checkpoints: Lightning would
    version its new files (best-v1.ckpt) and a later resume would read the stale last.ckpt."""
    folder = Path(folder)
    stale = sorted(folder.glob("*.ckpt")) + sorted(folder.glob(".*.tmp"))
    for file in stale:
        with contextlib.suppress(FileNotFoundError):
            file.unlink()
    if stale:
        log.info("removed %d checkpoint file(s) of an earlier run from %s", len(stale), folder)
