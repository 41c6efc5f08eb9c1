"""The last.ckpt policy: every N-th epoch or every M minutes, always at the end of fit; best.ckpt
holds weights only. Recorded at the checkpoint writer, so every write is seen."""
from __future__ import annotations

import pytest
from helpers import TINY

from mtlv.run.checkpoint import AtomicCheckpointIO
from mtlv.config import compose
from mtlv.run.job import run_job


def writes(monkeypatch, tmp_path, *overrides: str) -> list[tuple[str, int, bool]]:
    seen = []
    original = AtomicCheckpointIO.save_checkpoint

    def spy(self, checkpoint, path, storage_options=None):
        seen.append((str(path).rsplit("/", 1)[-1], checkpoint["epoch"], "optimizer_states" in checkpoint))
        return original(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", spy)
    run_job(compose([*TINY, "dataset.limit=60", "trainer.max_epochs=3", "logger=none", "eval.save_weights=false",
                     f"paths.output_dir={tmp_path}", *overrides]))
    return seen


def test_last_every_n_epochs_and_always_at_the_end(monkeypatch, tmp_path):
    seen = writes(monkeypatch, tmp_path, "callbacks.model_checkpoint.last_every_n_epochs=2")
    assert [epoch for name, epoch, _ in seen if name == "last.ckpt"] == [1, 2]  # epoch 2, and the last (3)
    assert all(full for name, _, full in seen if name == "last.ckpt")  # exact resume needs the optimizer state
    best = [full for name, _, full in seen if name == "best.ckpt"]
    assert best and not any(best)  # weights only


def test_last_every_minutes_writes_only_at_the_end_of_a_short_fit(monkeypatch, tmp_path):
    seen = writes(monkeypatch, tmp_path, "callbacks.model_checkpoint.last_every_minutes=30")
    assert [epoch for name, epoch, _ in seen if name == "last.ckpt"] == [2]


def test_default_writes_last_every_epoch(monkeypatch, tmp_path):
    seen = writes(monkeypatch, tmp_path)
    assert [epoch for name, epoch, _ in seen if name == "last.ckpt"] == [0, 1, 2]


def test_bad_policy_is_refused():
    from mtlv.run.checkpoint import ModelCheckpoint

    with pytest.raises(ValueError, match="last_every_n_epochs=0"):
        ModelCheckpoint(last_every_n_epochs=0)
