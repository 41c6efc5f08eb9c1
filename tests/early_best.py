"""A test-only Lightning callback that makes the first epoch's checkpoint the job's best.

Tests of "the best checkpoint, not the last" need a job whose best epoch is not its last. A tiny model
on 200 documents usually improves every epoch, so the checkpoint callback is pointed
(`callbacks.model_checkpoint.monitor`) at a score this callback logs after every validation: minus the
epoch, highest at the first. The weights, MTLV's metrics and its final evaluation are untouched: only
which epoch `best.ckpt` holds changes. Add it with `helpers.BEST_AT_FIRST_EPOCH` and, in a subprocess,
`helpers.TESTS_ON_PATH` (this folder on PYTHONPATH).
"""
from __future__ import annotations

from lightning.pytorch.callbacks import Callback

SCORE = "early_best/score"


class BestAtFirstEpoch(Callback):
    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        pl_module.log(SCORE, -float(trainer.current_epoch))
