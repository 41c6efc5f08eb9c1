"""Open-I: Indiana University chest X-ray radiology reports, with the 19 labels of the reference study.

Accepted forms of `path`: the CSV (`indiana_reports.csv`), the NLM XML release archive
(`NLMCXR_reports.tgz`), its extracted `ecgen-radiology/` folder of XML reports, or a folder
holding any of these. Text = findings + " " + impression; a label is present when its pattern
is a case-insensitive substring of any of the report's major MeSH terms (qualifiers included).
"""
from __future__ import annotations

import logging
import re
import shutil
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from mtlv.data.corpus import Corpus
from mtlv.data.descriptions import load_descriptions
from mtlv.data.sources.archive import decode_bytes, extract_once, is_archive, refuse_special_file
from mtlv.errors import ConfigError, DataError
from mtlv.io import atomic_path

log = logging.getLogger(__name__)

# name -> pattern; order and names follow the reference study (19 labels).
OPENI_LABELS: dict[str, str] = {
    "Airspace Disease": "Airspace Disease",
    "Atelectasis": "Atelectasis",
    "Calcified granuloma": "Calcified granuloma",
    "Calcinosis": "Calcinosis",
    "Cardiomegaly": "Cardiomegaly",
    "Cicatrix": "Cicatrix",
    "Deformity": "Deformity",
    "Effusion": "Effusion",
    "Emphysema": "Emphysema",
    "Medical Device": "Medical Device",
    "Nodule": "Nodule",
    "granulomatous disease": "granulomatous disease",
    "indwelling catheters": "catheters, indwelling",
    "lung/hyperdistention": "lung/hyperdistention",
    "lung/hypoinflation": "lung/hypoinflation",
    "opacity": "opacity",
    "spine/degenerative": "spine/degenerative",
    "surgical instrument": "surgical instrument",
    "thoracic vertebrae/degenerative": "thoracic vertebrae/degenerative",
}
OPENI_URL = "https://openi.nlm.nih.gov/imgs/collections/NLMCXR_reports.tgz"
CSV_COLUMNS = ["uid", "MeSH", "findings", "impression"]
_ARCHIVE_NAME = "NLMCXR_reports.tgz"
_FORMS = ("indiana_reports.csv (columns uid, MeSH, findings, impression, ...), NLMCXR_reports.tgz "
          "(the NLM XML release) or its extracted ecgen-radiology/ folder of XML reports")

# De-identification left "XXXX" as a token and inside words ("x-XXXX", "XXXX-year-old");
# the hyphen that tied it to a word goes with it, then spacing before punctuation is tidied.
_DEID = re.compile(r"-?X{4,}-?")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?)])")


def clean_text(text: str) -> str:
    text = " ".join(_DEID.sub(" ", text).split())
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text)


# ----------------------------------------------------------------------------- readers
# Each reader returns records (id, findings, impression, major MeSH terms) and the number
# of documents whose bytes were not valid UTF-8.
def _read_csv(path: Path) -> tuple[list[tuple], int]:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding_errors="replace")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError) as exc:
        raise DataError(f"cannot parse {path} as CSV ({exc}); expected {_FORMS}") from exc
    missing = [c for c in CSV_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path} lacks the required column(s) {missing} (it has {list(df.columns)}); "
                        f"expected the Open-I CSV form: {_FORMS}")
    df = df[CSV_COLUMNS]
    dup = df["uid"][df["uid"].duplicated()]
    if len(dup):
        raise DataError(f"{path}: column uid repeats the value {dup.iloc[0]!r}; each report needs a "
                        "unique uid (remove the duplicate rows)")
    bad = int(df.apply(lambda col: col.str.contains("\ufffd", regex=False)).any(axis=1).sum())
    terms = [[t.strip() for t in s.split(";") if t.strip()] for s in df["MeSH"]]
    return list(zip(df["uid"].str.strip(), df["findings"], df["impression"], terms)), bad


def _xml_files(folder: Path) -> list[Path]:
    # numeric file names (1.xml ... 3955.xml) in numeric order, the order of the CSV's uid;
    # hidden files (e.g. macOS "._1.xml" resource forks) are not reports
    files = [f for f in folder.glob("*.xml") if not f.name.startswith(".")]
    return sorted(files, key=lambda f: (not f.stem.isdigit(), int(f.stem) if f.stem.isdigit() else 0, f.stem))


def _read_xml_dir(folder: Path) -> tuple[list[tuple], int]:
    records, bad, recognised = [], 0, 0
    for f in _xml_files(folder):
        text, was_bad = decode_bytes(f.read_bytes())
        bad += was_bad
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise DataError(f"{f} is not valid XML ({exc}); re-extract or re-download {_ARCHIVE_NAME}, "
                            "or remove the file") from exc
        sections = {a.get("Label", "").upper(): "".join(a.itertext()) for a in root.iter("AbstractText")}
        terms = ["".join(m.itertext()).strip() for m in root.findall(".//MeSH/major")]
        recognised += bool(sections or terms)
        records.append((f.stem, sections.get("FINDINGS", ""), sections.get("IMPRESSION", ""),
                        [t for t in terms if t]))
    if not recognised:
        raise DataError(f"no Open-I reports in {folder}: none of its XML files has <AbstractText> or "
                        f"<MeSH><major> elements; expected {_FORMS}")
    return records, bad


# ----------------------------------------------------------------------------- locating
def _missing_message(path: Path, why: str) -> str:
    return (f"Open-I reports not found at {path} ({why}). Put {_FORMS} there (download the archive "
            f"from {OPENI_URL}), or set dataset.path=... to where they are")


def _download(dest: Path) -> Path:
    """Fetch the NLM XML release to `dest` (atomically: a partial download is never trusted)."""
    log.info("downloading %s to %s", OPENI_URL, dest)
    try:
        with urllib.request.urlopen(OPENI_URL, timeout=60) as resp, atomic_path(dest) as tmp:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(resp, out, 1 << 20)
    except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts, read-only folder
        raise DataError(_missing_message(dest, f"download failed: {exc}")) from exc
    return dest


def _archive_target(path: Path) -> Path:
    if path.name.lower().endswith((".tgz", ".tar.gz")):
        return path
    return (path.parent if path.suffix else path) / _ARCHIVE_NAME  # a missing .csv or a folder


def _find_in_folder(folder: Path) -> tuple[str, Path]:
    csvs = sorted(folder.glob("*.csv"))
    preferred = [c for c in csvs if c.name == "indiana_reports.csv"]
    if preferred or len(csvs) == 1:
        return "csv", (preferred or csvs)[0]
    for cand in [folder, folder / "ecgen-radiology", *sorted(folder.glob("*/ecgen-radiology"))]:
        if cand.is_dir() and next(cand.glob("*.xml"), None) is not None:
            return "xml", cand
    archives = [p for p in sorted(folder.iterdir()) if is_archive(p)]
    archives.sort(key=lambda p: p.name != _ARCHIVE_NAME)
    if archives:
        return _find_in_folder(extract_once(archives[0]))
    raise DataError(f"no Open-I reports in folder {folder}: expected {_FORMS}; "
                    "or set dataset.path=... to the file itself")


def _resolve(path: Path, download: bool) -> tuple[str, Path]:
    refuse_special_file(path)
    if not path.exists():
        if path.suffix.lower() in (".csv", ".tsv", ".txt", ".json", ".jsonl", ".xml"):  # a file the user named
            raise DataError(f"dataset.path={path}: file not found; set dataset.path=... to indiana_reports.csv, "
                            f"NLMCXR_reports.tgz or a folder holding them (a missing folder: {_ARCHIVE_NAME} "
                            "is downloaded there)")
        target = _archive_target(path)
        if not target.is_file():
            if not download:
                raise DataError(_missing_message(path, "and dataset.source.download=false"))
            _download(target)
        path = target
    if path.is_dir():
        return _find_in_folder(path)
    if path.suffix.lower() == ".csv":
        return "csv", path
    if is_archive(path):
        return _find_in_folder(extract_once(path))
    raise DataError(f"{path} is not a supported Open-I file; expected {_FORMS}")


# ----------------------------------------------------------------------------- loading
def _select_labels(labels: list[str] | None) -> dict[str, str]:
    if labels is None:
        return dict(OPENI_LABELS)
    unknown = [name for name in labels if name not in OPENI_LABELS]
    if unknown:
        raise ConfigError(f"dataset.source.labels has unknown Open-I label(s) {unknown}; "
                          f"choose from {list(OPENI_LABELS)} or leave it unset for all 19")
    return {name: OPENI_LABELS[name] for name in labels}


def load_openi(path: str, keep_unlabeled: bool = True, download: bool = True,
               labels: list[str] | None = None) -> Corpus:
    """Load and preprocess Open-I as the reference study: drop empty reports, remove "XXXX",
    drop duplicate texts (first kept), optionally drop reports with none of the labels."""
    chosen = _select_labels(labels)
    kind, source = _resolve(Path(path).expanduser(), download)
    records, bad = _read_csv(source) if kind == "csv" else _read_xml_dir(source)
    if bad:
        log.warning("Open-I: %d reports in %s were not valid UTF-8; bad bytes replaced by U+FFFD",
                    bad, source)
    patterns = [p.lower() for p in chosen.values()]
    notes = {"raw": len(records), "non_utf8": bad, "dropped_empty": 0, "dropped_duplicate": 0,
             "duplicate_label_conflicts": 0, "dropped_unlabeled": 0, "unlabeled_kept": 0}
    ids, texts, rows, seen = [], [], [], {}
    for doc_id, findings, impression, terms in records:
        text = clean_text(f"{findings} {impression}")
        if not text:  # neither findings nor impression (or nothing but "XXXX")
            notes["dropped_empty"] += 1
            continue
        lowered = [t.lower() for t in terms]
        row = [any(p in t for t in lowered) for p in patterns]
        if text in seen:  # the reference keeps the first copy, even when labels differ
            notes["dropped_duplicate"] += 1
            notes["duplicate_label_conflicts"] += seen[text] != row
            continue
        seen[text] = row
        if not any(row):
            key = "unlabeled_kept" if keep_unlabeled else "dropped_unlabeled"
            notes[key] += 1
            if not keep_unlabeled:
                continue
        ids.append(doc_id), texts.append(text), rows.append(row)
    notes["kept"] = len(ids)
    log.info("Open-I from %s: %s", source, notes)
    descriptions = load_descriptions("openi")
    return Corpus(name="openi", ids=ids, texts=texts,
                  labels=np.array(rows, dtype=np.uint8).reshape(-1, len(chosen)),
                  label_names=list(chosen), notes=notes,
                  descriptions={n: descriptions[n] for n in chosen if n in descriptions})
