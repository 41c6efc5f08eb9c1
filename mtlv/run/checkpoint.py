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
* `verify_checkpoint`: checked before resuming; a truncated or non-tensor (pickled code)
  checkpoint is refused with a message that names the file and says what to do.

The checkpoint written when a job is told to stop (SIGUSR1, SIGTERM) is `PreemptionCheckpoint`'s, in
mtlv/run/preempt.py.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import time
import zipfile
from pathlib import Path
from typing import Any

import torch
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
