"""Files MTLV writes get the mode open() would give them: 0666 less the umask (folders 0777 less the
umask), so that colleagues on a shared machine or cluster can read the results when the umask allows
it. (Temporary files made with tempfile are private, 0600, and a rename keeps that mode.)"""
from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli
from reliability._support import FAST

from mtlv.data.sources.archive import extract_once
from mtlv.io import atomic_dir, atomic_path, write_json, write_text


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture(params=[0o022, 0o002, 0o027], ids=["umask022", "umask002", "umask027"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_atomic_writers_honour_the_umask(tmp_path, umask):
    expected_file, expected_dir = 0o666 & ~umask, 0o777 & ~umask  # what open() and mkdir() give
    json_file = write_json(tmp_path / "result.json", {"f1": 0.5})
    text_file = write_text(tmp_path / "sub" / "report.md", "# report\n")
    with atomic_path(tmp_path / "split.npz") as tmp, open(tmp, "wb") as fh:  # the way caches are written
        np.savez(fh, train=np.arange(3))
    with atomic_dir(tmp_path / "export") as tmp:
        (tmp / "model.safetensors").write_bytes(b"weights")
    assert {p.name: oct(mode(p)) for p in (json_file, text_file, tmp_path / "split.npz",
                                         tmp_path / "export" / "model.safetensors")} == {
        "result.json": oct(expected_file), "report.md": oct(expected_file), "split.npz": oct(expected_file),
        "model.safetensors": oct(expected_file)}
    assert oct(mode(tmp_path / "export")) == oct(expected_dir)


def test_extracted_archive_folder_honours_the_umask(tmp_path, umask):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("text")
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "a.txt", arcname="a.txt")
    target = extract_once(archive)
    assert oct(mode(target)) == oct(0o777 & ~umask)


def walk(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): mode(p) for p in sorted(folder.rglob("*"))}


@pytest.mark.slow
@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["umask022", "umask002"])
def test_every_file_of_a_job_has_the_mode_open_would_give(tmp_path, umask):
    """A whole job (checkpoints, exported safetensors, caches, splits, predictions, metrics, MLflow
    store and artifacts, plots): each file 0666 & ~umask, each folder 0777 & ~umask."""
    run_cli("mtlv.train", [*FAST, "eval.save_weights=true"], tmp_path, umask=umask)
    found = walk(tmp_path)
    names = {Path(p).name for p in found}
    assert {"result.json", "metrics.json", "predictions_test.csv", "model.safetensors", "best.ckpt", "last.ckpt",
            "groups.yaml", "mlflow.db", "per_label_f1.png"} <= names, sorted(names)
    assert any(p.startswith("cache/") and p.endswith(".npz") for p in found), sorted(found)  # split, tokens
    assert any(p.startswith("mlartifacts/") and p.endswith("metrics.json") for p in found)
    wrong = {p: oct(m) for p, m in found.items()
             if m != (0o777 if (tmp_path / p).is_dir() else 0o666) & ~umask}
    assert not wrong, f"umask {umask:04o}: files and folders with another mode: {wrong}"
