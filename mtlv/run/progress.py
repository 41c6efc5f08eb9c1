"""Training progress that reads well where it is written: a bar in a terminal, lines in a log file.

Lightning's TQDM bar redraws itself with carriage returns. In a file (a SLURM `.out`, `> log`,
`nohup`) every redraw stays, and one epoch becomes one line of tens of kilobytes that no pager or
`grep` can read. So `progress_bar` (conf/callbacks/default.yaml) gives the TQDM bar when stdout is a
terminal and `LineProgressBar` otherwise: one log line per epoch (and, with `every_n_steps`, every N
training steps) with the epoch, step, loss, validation F1-macro, elapsed time and the time left.

Progress bars are not part of a job's identity (mtlv/config.py): changing them never retrains a job.
"""
from __future__ import annotations

import datetime
import logging
import math
import sys
import time

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress import ProgressBar

from mtlv.options import choices

log = logging.getLogger(__name__)

STYLES = choices("callbacks.progress_bar.style")  # auto, bar, lines (declared in mtlv/options.py's OPTIONS)
LOSS, VAL_F1, STEP_LOSS = "train/loss_epoch", "val/f1_macro", "train/loss_step"  # what MultiTaskModule logs


def progress_bar(style: str = "auto", refresh_rate: int = 10, every_n_steps: int = 0) -> ProgressBar:
    """`style=auto`: the TQDM bar when stdout is a terminal, else lines; `bar` or `lines` force one."""
    if style not in STYLES:
        raise ValueError(f"callbacks.progress_bar.style={style!r}: use one of {', '.join(STYLES)}")
    if style == "bar" or (style == "auto" and sys.stdout.isatty()):
        return TQDMProgressBar(refresh_rate=int(refresh_rate))
    return LineProgressBar(every_n_steps=int(every_n_steps))


def progress_switch(callbacks: dict, enable_progress_bar: bool) -> tuple[dict, bool]:
    """The callbacks for the Trainer and its `enable_progress_bar`: progress is shown only when a progress
    bar callback is configured and Lightning's switch is on. Either switch alone turns it off: Lightning
    refuses a progress bar callback with enable_progress_bar=false (MisconfigurationException, after the
    data has loaded), and adds its own TQDM bar when there is none."""
    bars = [name for name, callback in callbacks.items() if isinstance(callback, ProgressBar)]
    if bars and enable_progress_bar:
        return callbacks, True
    return {name: callback for name, callback in callbacks.items() if name not in bars}, False


def _clock(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds))) if math.isfinite(seconds) else "?"


class LineProgressBar(ProgressBar):
    """One log line per training epoch, plus one every `every_n_steps` optimizer steps (0: none)."""

    def __init__(self, every_n_steps: int = 0) -> None:
        super().__init__()
        if int(every_n_steps) < 0:
            raise ValueError(f"callbacks.progress_bar.every_n_steps={every_n_steps}: use 0 (epoch lines only) or more")
        self.every_n_steps = int(every_n_steps)
        self._enabled = True
        self._start, self._start_step, self._last_step = 0.0, 0, -1

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer, pl_module) -> None:
        self._start, self._start_step = time.monotonic(), trainer.global_step  # a resumed job starts mid-way

    def _timing(self, trainer) -> str:
        """Elapsed in this process, and the training time left at the rate of its steps so far."""
        elapsed = time.monotonic() - self._start
        done, total = trainer.global_step - self._start_step, trainer.estimated_stepping_batches
        left = (total - trainer.global_step) * elapsed / done if done > 0 else math.inf
        return f"elapsed {_clock(elapsed)}  ETA {_clock(max(left, 0.0))}"

    def _where(self, trainer) -> str:
        total = trainer.estimated_stepping_batches
        steps = f"{trainer.global_step}/{total}" if math.isfinite(total) else str(trainer.global_step)
        # With a step budget (trainer.max_steps) the step count says when training ends, not max_epochs.
        by_epochs = trainer.max_epochs and trainer.max_epochs > 0 and not (trainer.max_steps and trainer.max_steps > 0)
        epochs = f"/{trainer.max_epochs}" if by_epochs else ""
        return f"epoch {trainer.current_epoch + 1}{epochs}  step {steps}"

    @staticmethod
    def _metric(trainer, key: str, label: str) -> str:
        value = trainer.callback_metrics.get(key)
        return f"  {label} {float(value):.4f}" if value is not None else ""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if not (self._enabled and self.every_n_steps and step and step % self.every_n_steps == 0
                and step != self._last_step):  # several batches share a step under gradient accumulation
            return
        self._last_step = step
        log.info("%s%s  %s", self._where(trainer), self._metric(trainer, STEP_LOSS, "loss"), self._timing(trainer))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._enabled:  # validation ran before this hook: its F1 is this epoch's
            log.info("%s%s%s  %s", self._where(trainer), self._metric(trainer, LOSS, "loss"),
                     self._metric(trainer, VAL_F1, "val F1-macro"), self._timing(trainer))
