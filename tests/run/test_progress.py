"""Progress output: a TQDM bar in a terminal; in a file (SLURM .out, `> log`, nohup) one line per epoch
(and every N steps), never carriage-return redraws. Either off switch turns it off without a crash."""
from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from reliability._support import FAST, ROOT, EntryPoint

from mtlv.run.progress import LineProgressBar, progress_bar

QUIET = ("callbacks.progress_bar=null", "trainer.enable_progress_bar=false")
PROGRESS_FREE = [a for a in FAST if a not in QUIET]  # FAST, with the default progress output
EPOCH_LINE = re.compile(r"epoch (\d+)/(\d+)  step (\d+)/(\d+)  loss \d\.\d{4}  val F1-macro \d\.\d{4}  "
                        r"elapsed \d+:\d\d:\d\d  ETA \d+:\d\d:\d\d$")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_in_a_terminal_lines_elsewhere(monkeypatch):
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert type(progress_bar()) is TQDMProgressBar
    assert type(progress_bar(style="lines")) is LineProgressBar
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a file or a pipe
    assert type(progress_bar()) is LineProgressBar
    assert type(progress_bar(style="bar")) is TQDMProgressBar


@pytest.mark.slow
def test_a_job_writing_to_a_file_prints_one_line_per_epoch(tmp_path):
    """`python -m mtlv.train > log 2>&1`: no carriage return in the file, one line per epoch 1/2 and 2/2."""
    log_file = tmp_path / "train.log"
    env = dict(os.environ, MTLV_OUTPUT_DIR=str(tmp_path / "out"), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    with open(log_file, "w") as out:
        proc = subprocess.run([sys.executable, "-m", "mtlv.train", *PROGRESS_FREE, "trainer.max_epochs=2",
                               "logger=none"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=600)
    raw = log_file.read_bytes()  # bytes: read_text() would turn each carriage return into a newline
    text = raw.decode()
    assert proc.returncode == 0, text[-3000:]
    assert raw.count(b"\r") == 0, "carriage-return redraws in the log file"
    lines = [line for line in text.splitlines() if "mtlv.run.progress" in line]
    epochs = [EPOCH_LINE.search(line) for line in lines]
    assert all(epochs), lines
    # 120 documents -> 81 training documents at batch size 16: 6 steps per epoch, 12 in all
    assert [(m[1], m[2], m[3], m[4]) for m in epochs] == [("1", "2", "6", "12"), ("2", "2", "12", "12")], lines
    assert max(len(line) for line in raw.split(b"\n")) < 1000  # no line of tens of kB


def test_enable_progress_bar_false_alone_turns_progress_off(monkeypatch, capsys, tmp_path):
    """Lightning's own switch, with the default progress bar callback left in place: no crash, no progress."""
    entry = EntryPoint(monkeypatch, capsys, tmp_path / "out")
    code, out, err = entry(*PROGRESS_FREE, "trainer.enable_progress_bar=false", "logger=none")
    assert code == 0, err[-3000:]
    assert "mtlv.run.progress" not in out + err and "\r" not in out + err
    assert "F1-macro" in out  # the job's summary


class Toy(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch).pow(2).mean()
        self.log("train/loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/f1_macro", torch.tensor(0.25))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_a_line_every_n_steps_and_at_each_epoch_end(caplog, tmp_path):
    """4 batches per epoch, accumulating 2: 2 steps per epoch, 6 in 3 epochs; every_n_steps=4: steps 4."""
    data = torch.utils.data.DataLoader(torch.randn(8, 2), batch_size=2)
    trainer = L.Trainer(max_epochs=3, accumulate_grad_batches=2, callbacks=[LineProgressBar(every_n_steps=4)],
                        logger=False, enable_checkpointing=False, enable_model_summary=False,
                        default_root_dir=tmp_path, accelerator="cpu", num_sanity_val_steps=0)
    with caplog.at_level(logging.INFO, logger="mtlv.run.progress"):
        trainer.fit(Toy(), data, data)
    lines = [r.getMessage() for r in caplog.records if r.name == "mtlv.run.progress"]
    wheres = [line.split("  loss")[0] for line in lines]
    assert wheres == ["epoch 1/3  step 2/6", "epoch 2/3  step 4/6", "epoch 2/3  step 4/6", "epoch 3/3  step 6/6"]
    assert "val F1-macro 0.2500" in lines[0] and "val F1-macro" not in lines[1]  # a step line: loss only
    assert all("ETA" in line for line in lines)
