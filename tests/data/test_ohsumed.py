"""OHSUMED source: the real sample (cross-checked by walking the folders) and synthetic layouts."""
from __future__ import annotations

import logging
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mtlv.data.sources.ohsumed import OHSUMED_CATEGORIES, load_ohsumed
from mtlv.errors import ConfigError, DataError

# What load_ohsumed gives on the sample (README: 228 training + 114 test documents).
PER_LABEL = [36, 23, 17, 52, 27, 35, 18, 39, 18, 43, 22, 35, 23, 45, 20, 25, 29, 29, 26, 39, 35, 26, 103]
LABELS_PER_DOC = {1: 89, 2: 133, 3: 82, 4: 27, 5: 10, 6: 1}


@pytest.fixture(scope="module")
def sample(ohsumed_dir):
    return load_ohsumed(str(ohsumed_dir))


def _walk(root: Path) -> dict[tuple[str, str], set[str]]:
    """Independent reading of the layout: (split folder, id) -> category folders."""
    docs: dict[tuple[str, str], set[str]] = {}
    for f in root.glob("*/C*/*"):
        docs.setdefault((f.parts[-3], f.name), set()).add(f.parts[-2])
    return docs


@pytest.mark.data
def test_sample_counts(sample, ohsumed_dir):
    assert len(sample) == 342 and sample.notes["files"] == 765 and sample.notes["dropped_empty"] == 0
    assert Counter(sample.given_split.tolist()) == {"train": 228, "test": 114}
    assert sample.labels.sum(axis=0).tolist() == PER_LABEL
    assert dict(Counter(sample.labels.sum(axis=1).tolist())) == LABELS_PER_DOC
    assert sample.label_names == list(OHSUMED_CATEGORIES.values())
    assert sample.label_names[22] == "C23 Pathological Conditions Signs and Symptoms"
    assert set(sample.descriptions) == set(sample.label_names)
    # cross-check against a plain walk of the folders
    walked = _walk(ohsumed_dir)
    assert Counter(s for s, _ in walked) == {"training": 228, "test": 114}
    for i, (doc_id, split) in enumerate(zip(sample.ids, sample.given_split)):
        cats = walked[("training" if split == "train" else "test", doc_id)]
        assert {sample.label_names[j][:3] for j in np.flatnonzero(sample.labels[i])} == cats


@pytest.mark.data
def test_sample_text_and_parent_folder(sample, ohsumed_dir):
    i = sample.ids.index("0000034")
    assert sample.given_split[i] == "train"
    assert sample.texts[i].startswith("Osteoma of the middle ear. Report of a case. Osteomas of the middle ear are rare.")
    assert all(t and "\n" not in t and "  " not in t for t in sample.texts)
    assert load_ohsumed(str(ohsumed_dir.parent)).fingerprint() == sample.fingerprint()


@pytest.mark.data
def test_sample_fraction_is_stratified_and_seeded(sample, ohsumed_dir):
    half = load_ohsumed(str(ohsumed_dir), fraction=0.5, seed=0)
    assert len(half) == 176 and Counter(half.given_split.tolist()) == {"train": 116, "test": 60}
    assert load_ohsumed(str(ohsumed_dir), fraction=0.5, seed=0).ids == half.ids
    assert load_ohsumed(str(ohsumed_dir), fraction=0.5, seed=1).ids != half.ids
    assert set(half.ids) <= set(sample.ids)
    # stratified: every category keeps about half of its documents, in each split too
    full, got = sample.labels.sum(axis=0), half.labels.sum(axis=0)
    assert np.all(np.abs(got - full * len(half) / len(sample)) <= 2.5), (got, full)
    for split in ("train", "test"):
        full_s = sample.labels[sample.given_split == split].sum(axis=0)
        got_s = half.labels[half.given_split == split].sum(axis=0)
        assert np.all(np.abs(got_s - full_s / 2) <= 3), (split, got_s, full_s)
    rare = load_ohsumed(str(ohsumed_dir), fraction=0.2, min_docs_per_label=5)
    assert 0 < rare.notes["labels_dropped_rare"] < 23
    assert rare.num_labels == 23 - rare.notes["labels_dropped_rare"]
    assert rare.labels.sum(axis=0).min() >= 5


@pytest.mark.parametrize("fraction", [0, 1.5, -0.2])
def test_bad_fraction(tmp_path, fraction):
    with pytest.raises(ConfigError, match="dataset.fraction"):
        load_ohsumed(str(tmp_path), fraction=fraction)


# ----------------------------------------------------------------------------- synthetic
def _doc(folder: Path, cat: str, doc_id: str, content: bytes | str) -> None:
    (folder / cat).mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    (folder / cat / doc_id).write_bytes(data)


def _tiny_all(root: Path) -> Path:
    layout = root / "ohsumed-all"
    _doc(layout, "C01", "0000001", "Sepsis in infants.\n Blood cultures were\n  positive.\n")
    _doc(layout, "C04", "0000001", "Sepsis in infants.\n Blood cultures were\n  positive.\n")
    _doc(layout, "C23", "0000002", "Fever of unknown origin.\n A case series.")
    _doc(layout, "C04", "0000003", "  \n\n")  # empty -> dropped
    _doc(layout, "C14", "0000004", b"Caf\xe9 coronary study.\n Abstract.")  # latin-1 byte
    return layout


def _check_tiny(c) -> None:
    assert c.ids == ["0000001", "0000002", "0000004"]
    assert c.texts == ["Sepsis in infants. Blood cultures were positive.", "Fever of unknown origin. A case series.",
                       "Caf\ufffd coronary study. Abstract."]
    assert c.given_split is None and c.num_labels == 23
    on = [[c.label_names[j][:3] for j in np.flatnonzero(row)] for row in c.labels]
    assert on == [["C01", "C04"], ["C23"], ["C14"]]
    assert c.labels[:, 1].sum() == 0  # C02 absent: an all-zero column, still present
    assert c.notes["dropped_empty"] == 1 and c.notes["non_utf8"] == 1 and c.notes["kept"] == 3


def test_tiny_ohsumed_all_folder(tmp_path, caplog):
    layout = _tiny_all(tmp_path)
    with caplog.at_level(logging.WARNING):
        _check_tiny(load_ohsumed(str(layout)))
    assert "not valid UTF-8" in caplog.text and "empty" in caplog.text
    _check_tiny(load_ohsumed(str(tmp_path)))  # a parent with exactly one layout


def test_tiny_ohsumed_all_archive(tmp_path):
    layout = _tiny_all(tmp_path / "src")
    archive = tmp_path / "dl" / "ohsumed-all-docs.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(layout, arcname="ohsumed-all")
    _check_tiny(load_ohsumed(str(archive)))
    _check_tiny(load_ohsumed(str(tmp_path / "dl" / "ohsumed-all-docs")))  # folder named, archive found
    extracted = tmp_path / "dl" / "ohsumed-all-docs_extracted"
    assert (extracted / "ohsumed-all" / "C23" / "0000002").is_file()
    (extracted / "ohsumed-all" / "C23" / "0000002").unlink()  # extracted once: reused, not redone
    assert load_ohsumed(str(archive)).ids == ["0000001", "0000004"]
    assert sorted(p.name for p in archive.parent.iterdir()) == ["ohsumed-all-docs.tar.gz", "ohsumed-all-docs_extracted"]


def test_split_layout_with_conflict(tmp_path, caplog):
    root = tmp_path / "ohsumed-first-20000-docs"
    _doc(root / "training", "C01", "0000010", "Train doc.\nA.")
    _doc(root / "training", "C02", "0000010", "Train doc.\nA.")
    _doc(root / "training", "C05", "0000011", "Only train.\nB.")
    _doc(root / "test", "C03", "0000010", "Train doc.\nA.")  # also in training: training copy kept
    _doc(root / "test", "C03", "0000009", "Test doc.\nC.")
    with caplog.at_level(logging.WARNING):
        c = load_ohsumed(str(root))
    assert c.ids == ["0000010", "0000011", "0000009"]
    assert c.given_split.tolist() == ["train", "train", "test"]
    assert c.labels[0, :3].tolist() == [1, 1, 0]
    assert c.notes["split_conflicts"] == 1 and "both training and test" in caplog.text


def test_errors(tmp_path):
    with pytest.raises(DataError, match="ohsumed-first-20000-docs.tar.gz.*dataset.path=") as err:
        load_ohsumed(str(tmp_path / "missing"))
    assert str(tmp_path / "missing") in str(err.value)
    (tmp_path / "empty" / "docs").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no OHSUMED category folders .*empty.*ohsumed-all/C01\.\.C23"):
        load_ohsumed(str(tmp_path / "empty"))
    _tiny_all(tmp_path / "two" / "a")
    _tiny_all(tmp_path / "two" / "b")
    with pytest.raises(DataError, match="several OHSUMED layouts"):
        load_ohsumed(str(tmp_path / "two"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="neither a folder nor"):
        load_ohsumed(str(tmp_path / "notes.txt"))
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"garbage")
    with pytest.raises(DataError, match="bad.tgz.*corrupt"):
        load_ohsumed(str(bad))
