"""Outputs are written atomically (temporary file or folder, then rename): a crash leaves the old
file or none, never a half-written one that a later run would trust."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from reliability._support import ROOT

from mtlv.io import atomic_dir, atomic_path, read_json, write_json


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    path = write_json(tmp_path / "result.json", {"ok": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text('{"half": ')
            raise RuntimeError("crash while writing")
    assert read_json(path) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_sigkill_while_writing_never_leaves_a_torn_file(tmp_path):
    """A process rewriting a 2 MB JSON file in a loop is SIGKILLed: the file always parses."""
    path = tmp_path / "metrics.json"
    code = ("import sys\nfrom mtlv.io import write_json\ni = 0\n"
            "while True:\n    write_json(sys.argv[1], {'i': i, 'pad': 'x' * 2_000_000}); i += 1\n"
            "    open(sys.argv[1] + '.count', 'w').write(str(i))\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT)
    deadline = time.time() + 600  # only a hang: interpreter start-up alone is slow on a loaded machine
    while not Path(f"{path}.count").exists() or int(Path(f"{path}.count").read_text() or 0) < 3:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    data = json.loads(path.read_text())
    assert data["i"] >= 2 and len(data["pad"]) == 2_000_000


def test_atomic_dir_replaces_a_folder_whole_or_not_at_all(tmp_path):
    target = tmp_path / "export"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("v1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "a.txt").write_text("v2")
            raise RuntimeError("crash half-way")
    assert (target / "a.txt").read_text() == "v1"
    with atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("v3")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temporary or old folders left


def test_model_export_is_atomic(tmp_path, monkeypatch):
    """A crash while the tokenizer is saved leaves the previous export, which mtlv.predict trusts."""
    from transformers import BertConfig, BertModel

    from mtlv.models.encoder import load_tokenizer
    from mtlv.models.export import ExportedModel, export_model
    from mtlv.models.heads import GroupedHeads

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = BertModel(BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1,
                                                num_attention_heads=2, intermediate_size=16))
            self.heads = GroupedHeads(16, [[0, 1]])

    tokenizer = load_tokenizer("packaged:minilm")
    meta = {"label_names": ["a", "b"], "groups": [[0, 1]], "pooling": "cls", "max_length": 16, "threshold": 0.5}
    out = export_model(Tiny(), tokenizer, tmp_path / "export", meta)
    before = ExportedModel(out).predict_proba(["a report"])

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(tokenizer), "save_pretrained", crash)
    with pytest.raises(OSError):
        export_model(Tiny(), tokenizer, tmp_path / "export", {**meta, "threshold": 0.9})
    assert read_json(out / "mtlv_model.json")["threshold"] == 0.5
    assert torch.equal(ExportedModel(out).predict_proba(["a report"]), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_split_cache_is_never_half_written(tmp_path, monkeypatch):
    """Splits are shared by every architecture of a study: a torn split file would silently change
    which documents are test documents. A failed write leaves no file, so the next run recomputes."""
    from mtlv.data import splits
    from mtlv.data.sources.demo import load_demo

    corpus = load_demo(limit=100)

    def dying_savez(fh, **arrays):
        fh.write(b"PK\x03\x04")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", dying_savez)
    with pytest.raises(KeyboardInterrupt):
        splits.load_or_make_split(corpus, tmp_path, seed=1)
    assert not list((tmp_path / "splits").glob("*.npz"))
    monkeypatch.undo()
    split = splits.load_or_make_split(corpus, tmp_path, seed=1)
    assert split.path.exists() and sum(split.sizes().values()) == 100


def test_a_finished_job_folder_holds_no_temporary_files(logged_run):
    result, _, out, _ = logged_run
    leftovers = [str(p) for p in out.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]
    assert not leftovers
    folder = Path(result["folder"])
    for name in ("label_counts.csv", "classification_report.csv", "predictions_test.csv", "metrics.json",
                 "result.json", "export/model.safetensors", "export/mtlv_model.json", "checkpoints/last.ckpt"):
        assert (folder / name).stat().st_size > 0, name
    assert os.stat(folder / "export").st_mode & 0o777 == os.stat(folder).st_mode & 0o777
