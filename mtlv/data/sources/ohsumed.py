"""OHSUMED in Moschitti's folder layout (23 MeSH disease categories C01..C23).

Two layouts are read, from a folder or a .tar.gz/.tgz of one:
  ohsumed-all/Cxx/<id>                              (no split)
  ohsumed-first-20000-docs/{training,test}/Cxx/<id> (given split)
A document is one file named by its 7-digit id (title on the first line, abstract after);
it is copied into every category folder it belongs to, so its labels are all those folders.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mtlv.data.corpus import Corpus
from mtlv.data.sources.archive import ARCHIVE_SUFFIXES, decode_bytes, extract_once, is_archive, refuse_special_file
from mtlv.data.descriptions import load_descriptions
from mtlv.errors import ConfigError, DataError

log = logging.getLogger(__name__)

# Commas are not allowed in MLflow metric keys, hence "Conditions Signs" below.
OHSUMED_CATEGORIES: dict[str, str] = {
    "C01": "C01 Bacterial Infections and Mycoses",
    "C02": "C02 Virus Diseases",
    "C03": "C03 Parasitic Diseases",
    "C04": "C04 Neoplasms",
    "C05": "C05 Musculoskeletal Diseases",
    "C06": "C06 Digestive System Diseases",
    "C07": "C07 Stomatognathic Diseases",
    "C08": "C08 Respiratory Tract Diseases",
    "C09": "C09 Otorhinolaryngologic Diseases",
    "C10": "C10 Nervous System Diseases",
    "C11": "C11 Eye Diseases",
    "C12": "C12 Urologic and Male Genital Diseases",
    "C13": "C13 Female Genital Diseases and Pregnancy Complications",
    "C14": "C14 Cardiovascular Diseases",
    "C15": "C15 Hemic and Lymphatic Diseases",
    "C16": "C16 Neonatal Diseases and Abnormalities",
    "C17": "C17 Skin and Connective Tissue Diseases",
    "C18": "C18 Nutritional and Metabolic Diseases",
    "C19": "C19 Endocrine Diseases",
    "C20": "C20 Immunologic Diseases",
    "C21": "C21 Disorders of Environmental Origin",
    "C22": "C22 Animal Diseases",
    "C23": "C23 Pathological Conditions Signs and Symptoms",
}
_SPLITS = {"training": "train", "test": "test"}
_LAYOUT_HELP = ("expected Moschitti's layout: ohsumed-all/C01..C23/<7-digit id> or "
                "ohsumed-first-20000-docs/{training,test}/C01..C23/<7-digit id>")
_WHERE = ("download one of Moschitti's OHSUMED archives (ohsumed-first-20000-docs.tar.gz or "
          "ohsumed-all-docs.tar.gz, http://disi.unitn.it/moschitti/corpora.htm), and point "
          "dataset.path=... at the archive or the folder it extracts to")


# ----------------------------------------------------------------------------- layout
def _category_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name in OHSUMED_CATEGORIES)


def _layout(folder: Path) -> dict[str, list[Path]] | None:
    """{split: category folders} if `folder` is a layout root; split is None when unsplit."""
    splits = {s: folder / d for d, s in _SPLITS.items() if (folder / d).is_dir()}
    if splits and all(_category_dirs(p) for p in splits.values()):
        return {s: _category_dirs(p) for s, p in splits.items()}
    cats = _category_dirs(folder)
    return {None: cats} if cats else None


def find_layout(root: Path, max_depth: int = 4) -> dict[str, list[Path]]:
    """The single layout at or below `root` (we never descend into a layout once found)."""
    found, frontier = [], [root]
    for _ in range(max_depth + 1):
        nxt = []
        for folder in frontier:
            layout = _layout(folder)
            if layout is not None:
                found.append((folder, layout))
            else:
                nxt.extend(sorted(p for p in folder.iterdir() if p.is_dir()))
        frontier = nxt
    if not found:
        raise DataError(f"no OHSUMED category folders (C01..C23) found under {root}; {_LAYOUT_HELP}")
    if len(found) > 1:
        raise DataError(f"{root} holds several OHSUMED layouts ({', '.join(str(f) for f, _ in found)}); "
                        "set dataset.path=... to the one you want")
    return found[0][1]


# ----------------------------------------------------------------------------- documents
def _read_documents(layout: dict, notes: dict[str, int]) -> tuple[list, list, list, list]:
    """ids, texts, label sets and split per unique (split, id); training wins id conflicts."""
    docs: dict[tuple, dict] = {}
    for split, cats in layout.items():
        for cat in cats:
            for f in sorted(p for p in cat.iterdir() if p.is_file() and not p.name.startswith(".")):
                notes["files"] += 1
                doc = docs.get((split, f.name))
                if doc is None:
                    text, bad = decode_bytes(f.read_bytes())
                    notes["non_utf8"] += bad
                    # title + " " + abstract, whitespace-normalised in one step
                    doc = docs[(split, f.name)] = {"text": " ".join(text.split()), "labels": set()}
                doc["labels"].add(cat.name)
    if notes["non_utf8"]:
        log.warning("OHSUMED: %d documents were not valid UTF-8; bad bytes replaced by U+FFFD",
                    notes["non_utf8"])
    train_ids = {i for s, i in docs if s == "train"}
    conflicts = sorted(i for s, i in docs if s == "test" and i in train_ids)
    if conflicts:
        notes["split_conflicts"] = len(conflicts)
        log.warning("OHSUMED: %d ids are in both training and test (e.g. %s); keeping the training "
                    "copy", len(conflicts), conflicts[0])
    order = {"train": 0, None: 0, "test": 1}
    ids, texts, labels, splits = [], [], [], []
    for (split, doc_id), doc in sorted(docs.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        if split == "test" and doc_id in train_ids:
            continue
        if not doc["text"]:
            notes["dropped_empty"] += 1
            continue
        ids.append(doc_id), texts.append(doc["text"]), labels.append(doc["labels"]), splits.append(split)
    if notes["dropped_empty"]:
        log.warning("OHSUMED: dropped %d empty documents", notes["dropped_empty"])
    return ids, texts, labels, splits


def _subsample(y: np.ndarray, splits: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a multilabel-stratified `fraction` of each split group."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    keep = []
    for group in dict.fromkeys(splits.tolist()):
        idx = np.flatnonzero(splits == group)
        n_keep = max(1, int(round(fraction * len(idx))))
        if n_keep >= len(idx):
            keep.append(idx)
            continue
        sss = MultilabelStratifiedShuffleSplit(n_splits=1, train_size=n_keep,
                                               test_size=len(idx) - n_keep, random_state=seed)
        chosen, _ = next(sss.split(np.zeros(len(idx)), y[idx]))
        keep.append(idx[chosen])
    return np.sort(np.concatenate(keep))


def load_ohsumed(path: str, fraction: float | None = None, seed: int = 0,
                 min_docs_per_label: int = 0) -> Corpus:
    """Load OHSUMED; `fraction` draws a stratified subsample (the reference used 0.2).

    `min_docs_per_label` > 0 drops categories with fewer positive documents (after
    subsampling); by default all 23 categories are kept, empty ones as all-zero columns.
    """
    if fraction is not None and not 0 < fraction <= 1:
        raise ConfigError(f"dataset.fraction={fraction} is out of range; use a value in (0, 1]")
    root = Path(path).expanduser()
    # the config names the folder; accept its archive lying there unextracted
    archives = [root.with_name(root.name + s) for s in ARCHIVE_SUFFIXES]
    root = next((a for a in archives if not root.exists() and a.is_file()), root)
    refuse_special_file(root)
    if not root.exists():
        raise DataError(f"OHSUMED not found at {root}; {_WHERE}")
    if is_archive(root):
        root = extract_once(root)
    elif not root.is_dir():
        raise DataError(f"{root} is neither a folder nor a .tar.gz/.tgz archive; {_WHERE}")
    notes = {"files": 0, "non_utf8": 0, "dropped_empty": 0}
    ids, texts, label_sets, splits = _read_documents(find_layout(root), notes)
    if not ids:
        raise DataError(f"the OHSUMED category folders under {root} hold no non-empty documents; "
                        f"{_LAYOUT_HELP}")
    codes = list(OHSUMED_CATEGORIES)
    y = np.array([[c in s for c in codes] for s in label_sets], dtype=np.uint8).reshape(-1, len(codes))
    split_arr = np.array(splits, dtype=object)
    notes["documents"] = len(ids)
    if fraction is not None and fraction < 1:
        keep = _subsample(y, split_arr, fraction, seed)
        ids, texts = [ids[i] for i in keep], [texts[i] for i in keep]
        y, split_arr = y[keep], split_arr[keep]
    names = [OHSUMED_CATEGORIES[c] for c in codes]
    if min_docs_per_label > 0:
        cols = np.flatnonzero(y.sum(axis=0) >= min_docs_per_label)
        dropped = [names[i] for i in range(len(names)) if i not in set(cols)]
        if dropped:
            log.info("OHSUMED: dropping %d categories with < %d documents: %s",
                     len(dropped), min_docs_per_label, dropped)
        notes["labels_dropped_rare"] = len(dropped)
        y, names = y[:, cols], [names[i] for i in cols]
    notes["kept"] = len(ids)
    has_split = split_arr[0] is not None
    descriptions = load_descriptions("ohsumed")
    return Corpus(name="ohsumed", ids=ids, texts=texts, labels=y, label_names=names,
                  descriptions={n: descriptions[n] for n in names if n in descriptions},
                  given_split=split_arr.astype(str) if has_split else None, notes=notes)
