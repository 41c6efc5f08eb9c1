"""Open-I source: real CSV numbers (cross-checked with plain pandas) and synthetic CSV/XML/tgz."""
from __future__ import annotations

import io
import logging
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtlv.data.sources.openi import OPENI_LABELS, clean_text, load_openi
from mtlv.errors import ConfigError, DataError

# Numbers produced by load_openi on indiana_reports.csv (3,851 rows), cross-checked below with an
# independent pandas pipeline and against the README's raw counts.
REAL_KEPT = 3065
REAL_NOTES = {"raw": 3851, "non_utf8": 0, "dropped_empty": 25, "dropped_duplicate": 761,
              "duplicate_label_conflicts": 8, "dropped_unlabeled": 0, "unlabeled_kept": 1070,
              "kept": 3065}
REAL_COUNTS = {
    "Airspace Disease": 118, "Atelectasis": 315, "Calcified granuloma": 266, "Calcinosis": 291,
    "Cardiomegaly": 345, "Cicatrix": 184, "Deformity": 113, "Effusion": 153, "Emphysema": 102,
    "Medical Device": 84, "Nodule": 106, "granulomatous disease": 106, "indwelling catheters": 117,
    "lung/hyperdistention": 200, "lung/hypoinflation": 275, "opacity": 432,
    "spine/degenerative": 167, "surgical instrument": 98, "thoracic vertebrae/degenerative": 263,
}


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")
    monkeypatch.setattr("urllib.request.urlopen", refuse)


# ----------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def real(openi_csv):
    return load_openi(str(openi_csv), download=False)


@pytest.mark.data
def test_real_counts(real):
    assert len(real) == REAL_KEPT
    assert real.notes == REAL_NOTES
    assert dict(zip(real.label_names, real.labels.sum(axis=0).tolist())) == REAL_COUNTS
    assert real.given_split is None
    assert set(real.descriptions) == set(real.label_names)


@pytest.mark.data
def test_real_counts_match_independent_pandas(real, openi_csv):
    df = pd.read_csv(openi_csv)
    raw = df["MeSH"].str.lower()
    # the README's per-report counts before any preprocessing
    for term, n in {"opacity": 432, "cardiomegaly": 345, "atelectasis": 315, "calcinosis": 292}.items():
        assert raw.str.contains(term, regex=False).sum() == n
    df = df[df["findings"].notna() | df["impression"].notna()]
    text = (df["findings"].fillna("") + " " + df["impression"].fillna("")).str.replace(
        r"-?X{4,}-?", " ", regex=True).str.split().str.join(" ").str.replace(r"\s+([.,;:!?)])", r"\1", regex=True)
    dedup = df.assign(text=text).drop_duplicates("text")
    assert len(dedup) == len(real)
    assert dedup["uid"].astype(str).tolist() == real.ids
    mesh = dedup["MeSH"].str.lower()
    for name in ["opacity", "Cardiomegaly", "Atelectasis", "Calcinosis", "indwelling catheters", "Nodule"]:
        expected = mesh.str.contains(OPENI_LABELS[name].lower(), regex=False).sum()
        assert real.labels[:, real.label_names.index(name)].sum() == expected


@pytest.mark.data
def test_real_text_cleaning(real):
    assert not any("XXXX" in t for t in real.texts)
    assert all(t and t == t.strip() and "  " not in t for t in real.texts)
    assert len(set(real.texts)) == len(real.texts)
    assert real.texts[1].startswith("Borderline cardiomegaly. Midline sternotomy. Enlarged")


@pytest.mark.data
def test_real_keep_unlabeled_false(real, openi_csv):
    labeled = load_openi(str(openi_csv.parent), keep_unlabeled=False, download=False)  # folder form
    assert len(labeled) == REAL_KEPT - REAL_NOTES["unlabeled_kept"] == 1995
    assert labeled.notes["dropped_unlabeled"] == 1070
    assert labeled.labels.sum(axis=1).min() >= 1
    assert set(labeled.ids) <= set(real.ids)
    np.testing.assert_array_equal(labeled.labels.sum(axis=0), real.labels.sum(axis=0))


# ----------------------------------------------------------------------------- synthetic
REPORTS = [  # uid, findings, impression, major MeSH terms
    ("1", "Heart size normal. Lungs clear.", "Normal chest x-XXXX.", ["normal"]),
    ("2", "Borderline cardiomegaly. Midline sternotomy XXXX.", "No acute findings.",
     ["Cardiomegaly/borderline", "Surgical Instruments/sternum", "Lung/hyperdistention/mild"]),
    ("3", "", "", ["normal"]),  # empty -> dropped
    ("4", "Heart size normal. Lungs clear.", "Normal chest x-XXXX.", ["Opacity/lung"]),  # duplicate of 1
    ("5", "Right PICC XXXX tip in SVC.", "Small left pleural effusion.",
     ["Catheters, Indwelling/right", "Pleural Effusion/left/small", "Calcified Granuloma/lung"]),
    ("10", "XXXX-year-old. Low lung volumes.", "", ["Lung/hypoinflation", "Pulmonary Atelectasis/base"]),
]
EXPECTED_TEXTS = ["Heart size normal. Lungs clear. Normal chest x.",
                  "Borderline cardiomegaly. Midline sternotomy. No acute findings.",
                  "Right PICC tip in SVC. Small left pleural effusion.",
                  "year-old. Low lung volumes."]


def _write_csv(path: Path, reports=REPORTS) -> Path:
    pd.DataFrame([{"uid": u, "MeSH": ";".join(m), "Problems": "x", "image": "Xray", "indication": "",
                   "comparison": "", "findings": f, "impression": i} for u, f, i, m in reports]
                 ).to_csv(path, index=False)
    return path


def _xml(uid: str, findings: str, impression: str, majors: list[str]) -> str:
    mesh = "".join(f"<major>{m}</major>" for m in majors)
    return (f'<?xml version="1.0" encoding="utf-8"?><eCitation><uId id="CXR{uid}"/><pmcId id="{uid}"/>'
            "<MedlineCitation><Article><Abstract>"
            f'<AbstractText Label="COMPARISON">None.</AbstractText>'
            f'<AbstractText Label="FINDINGS">{findings}</AbstractText>'
            f'<AbstractText Label="IMPRESSION">{impression}</AbstractText>'
            f"</Abstract></Article></MedlineCitation><MeSH>{mesh}<automatic>ignored</automatic></MeSH>"
            "</eCitation>")


def _write_xml_dir(folder: Path, reports=REPORTS) -> Path:
    folder.mkdir(parents=True)
    for uid, f, i, m in reports:
        (folder / f"{uid}.xml").write_text(_xml(uid, f, i, m), encoding="utf-8")
    return folder


def _write_tgz(path: Path, src_dir: Path, arcname: str = "ecgen-radiology") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src_dir, arcname=arcname)
    return path


def _same(a, b) -> None:
    assert (a.ids, a.texts, a.label_names, a.notes) == (b.ids, b.texts, b.label_names, b.notes)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_label_table():
    assert len(OPENI_LABELS) == 19
    assert list(OPENI_LABELS)[:3] == ["Airspace Disease", "Atelectasis", "Calcified granuloma"]
    assert OPENI_LABELS["indwelling catheters"] == "catheters, indwelling"


def test_clean_text():
    assert clean_text("Normal chest x-XXXX.") == "Normal chest x."
    assert clean_text("There are no XXXX of a  pleural effusion.") == "There are no of a pleural effusion."
    assert clean_text("XXXX XXXX XXXX.") == "."
    assert clean_text("Ex-smoker, see x-ray") == "Ex-smoker, see x-ray"


def test_synthetic_csv(tmp_path):
    c = load_openi(str(_write_csv(tmp_path / "r.csv")), download=False)
    assert c.ids == ["1", "2", "5", "10"]
    assert c.texts == EXPECTED_TEXTS
    assert c.notes["dropped_empty"] == 1 and c.notes["dropped_duplicate"] == 1
    assert c.notes["duplicate_label_conflicts"] == 1  # uid 4 had Opacity; the first copy wins
    on = {c.ids[i]: {c.label_names[j] for j in np.flatnonzero(row)} for i, row in enumerate(c.labels)}
    assert on == {"1": set(),
                  "2": {"Cardiomegaly", "surgical instrument", "lung/hyperdistention"},
                  "5": {"indwelling catheters", "Effusion", "Calcified granuloma"},
                  "10": {"lung/hypoinflation", "Atelectasis"}}
    labeled = load_openi(str(tmp_path / "r.csv"), keep_unlabeled=False, download=False)
    assert labeled.ids == ["2", "5", "10"] and labeled.notes["dropped_unlabeled"] == 1
    sub = load_openi(str(tmp_path / "r.csv"), labels=["Effusion", "Cardiomegaly"], download=False)
    assert sub.label_names == ["Effusion", "Cardiomegaly"] and sub.labels.sum(axis=0).tolist() == [1, 1]
    with pytest.raises(ConfigError, match="Efusion"):
        load_openi(str(tmp_path / "r.csv"), labels=["Efusion"], download=False)


def test_xml_folder_and_tgz_equal_csv(tmp_path):
    from_csv = load_openi(str(_write_csv(tmp_path / "indiana_reports.csv")), download=False)
    xml_dir = _write_xml_dir(tmp_path / "xml" / "ecgen-radiology")
    _same(load_openi(str(xml_dir), download=False), from_csv)
    _same(load_openi(str(xml_dir.parent), download=False), from_csv)  # folder holding ecgen-radiology/
    (tmp_path / "arch").mkdir()
    tgz = _write_tgz(tmp_path / "arch" / "NLMCXR_reports.tgz", xml_dir)
    _same(load_openi(str(tgz), download=False), from_csv)
    extracted = tmp_path / "arch" / "NLMCXR_reports_extracted"
    assert (extracted / "ecgen-radiology" / "5.xml").is_file()
    (extracted / "ecgen-radiology" / "5.xml").unlink()  # extracted once: a second load reuses the folder
    assert load_openi(str(tgz), download=False).ids == ["1", "2", "10"]
    assert not [p for p in (tmp_path / "arch").iterdir() if p.name.startswith(".")]  # no temp left


def test_unsafe_tar_member_refused(tmp_path):
    tgz = tmp_path / "a" / "NLMCXR_reports.tgz"
    tgz.parent.mkdir()
    with tarfile.open(tgz, "w:gz") as tar:
        data = _xml(*REPORTS[1]).encode()
        info = tarfile.TarInfo("../evil.xml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DataError, match=r"unsafe member '\.\./evil\.xml'"):
        load_openi(str(tgz), download=False)
    assert not (tmp_path / "evil.xml").exists()
    assert not (tmp_path / "a" / "NLMCXR_reports_extracted").exists()


def test_missing_path(tmp_path):
    missing = tmp_path / "nowhere" / "indiana_reports.csv"
    with pytest.raises(DataError, match="dataset.path") as err:
        load_openi(str(missing), download=False)
    assert str(missing) in str(err.value)


def test_download_failure_says_where_to_put_files(tmp_path):
    with pytest.raises(DataError) as err:
        load_openi(str(tmp_path / "openi"), download=True)  # urlopen refuses (autouse fixture)
    msg = str(err.value)
    assert "indiana_reports.csv" in msg and "NLMCXR_reports.tgz" in msg and "dataset.path=" in msg
    assert not (tmp_path / "openi").exists() or not any((tmp_path / "openi").iterdir())


def test_download_writes_and_extracts(tmp_path, monkeypatch):
    blob = _write_tgz(tmp_path / "served.tgz", _write_xml_dir(tmp_path / "src" / "ecgen-radiology")).read_bytes()
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        return io.BytesIO(blob)
    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    c = load_openi(str(tmp_path / "data" / "openi"), download=True)
    assert calls == ["https://openi.nlm.nih.gov/imgs/collections/NLMCXR_reports.tgz"]
    assert (tmp_path / "data" / "openi" / "NLMCXR_reports.tgz").read_bytes() == blob
    assert c.texts == EXPECTED_TEXTS


def test_corrupt_archive_and_wrong_layout(tmp_path):
    bad = tmp_path / "NLMCXR_reports.tgz"
    bad.write_bytes(b"not a tar archive at all")
    with pytest.raises(DataError, match="NLMCXR_reports.tgz.*corrupt"):
        load_openi(str(bad), download=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="no Open-I reports in folder .*empty"):
        load_openi(str(empty), download=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "1.xml").write_text("<root><x/></root>")
    with pytest.raises(DataError, match="AbstractText"):
        load_openi(str(other), download=False)


def test_csv_missing_columns(tmp_path):
    path = tmp_path / "r.csv"
    pd.DataFrame({"uid": [1], "MeSH": ["normal"], "text": ["x"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"\['findings', 'impression'\]") as err:
        load_openi(str(path), download=False)
    assert str(path) in str(err.value)


def test_non_utf8_is_replaced_and_counted(tmp_path, caplog):
    path = _write_csv(tmp_path / "r.csv")
    path.write_bytes(path.read_bytes().replace(b"Small left", b"Small \xe9\xff left"))
    xml_dir = _write_xml_dir(tmp_path / "ecgen-radiology")
    (xml_dir / "2.xml").write_bytes((xml_dir / "2.xml").read_bytes().replace(b"Borderline", b"Border\xfeline"))
    with caplog.at_level(logging.WARNING):
        c = load_openi(str(path), download=False)
        x = load_openi(str(xml_dir), download=False)
    assert c.notes["non_utf8"] == 1 and "\ufffd" in c.texts[2]
    assert x.notes["non_utf8"] == 1 and x.texts[1].startswith("Border\ufffdline")
    assert "not valid UTF-8" in caplog.text


def test_read_only_archive_folder_extracts_to_cache(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    tgz = _write_tgz(ro / "NLMCXR_reports.tgz", _write_xml_dir(tmp_path / "src" / "ecgen-radiology"))
    monkeypatch.setenv("MTLV_CACHE_DIR", str(tmp_path / "cache"))
    from mtlv.data.sources import archive

    real_new_dir = archive.new_dir

    def read_only(parent, *args, **kw):  # chmod does not stop root, so simulate it
        if Path(parent) == ro:
            raise PermissionError(13, "Permission denied", str(parent))
        return real_new_dir(parent, *args, **kw)
    monkeypatch.setattr(archive, "new_dir", read_only)
    assert load_openi(str(tgz), download=False).texts == EXPECTED_TEXTS
    assert [p.name for p in ro.iterdir()] == ["NLMCXR_reports.tgz"]
    (cached,) = (tmp_path / "cache" / "extracted").iterdir()
    assert cached.name.startswith("NLMCXR_reports-") and (cached / "ecgen-radiology" / "1.xml").is_file()
