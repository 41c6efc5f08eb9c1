"""Checkpoints that a killed job can always resume from, and that never unpickle arbitrary objects.

* `ModelCheckpoint`: Lightning's callback, except that `last.ckpt` is written at the end of every
  epoch. Lightning >= 2.5 writes `last.ckpt` only when the monitored metric also produced a top-k
  checkpoint, so a job killed at epoch 9 whose best epoch was 3 would restart from epoch 3.
* `AtomicCheckpointIO`: writes each checkpoint to a temporary file in the checkpoint's own folder,
  fsyncs it and renames it into place. Lightning's own writer stages the file in the system temp
  folder and *moves* it, which is a non-atomic copy when /tmp is another filesystem (typical on
  clusters: local /tmp, shared output folder), and it leaves the staged file behind on a kill.
  It also loads with `weights_only=True` whatever the caller asks for.
* `verify_checkpoint`: checked before resuming; a truncated or non-tensor (pickled code)
  checkpoint is refused with a message that names the file and says what to do.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
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
    """`ModelCheckpoint` whose `save_last` really saves at the end of every epoch."""

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
