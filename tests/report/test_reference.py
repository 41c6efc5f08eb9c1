"""The shipped published numbers: equal to the transcription in the shared reference folder where that is
present, and correct on spot checks (independent of it) where it is not."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from mtlv.data.sources.ohsumed import OHSUMED_CATEGORIES
from mtlv.data.sources.openi import OPENI_LABELS
from mtlv.report.reference import PACKAGED, Reference, thesis_label

ROOT = Path(__file__).resolve().parents[2]


def shared_reference() -> Path | None:
    """MTLV_REFERENCE_CSV, else reference/thesis-results.csv beside $MTLV_DATA_DIR, else ../shared/reference."""
    candidates = [os.environ.get("MTLV_REFERENCE_CSV")]
    if os.environ.get("MTLV_DATA_DIR"):
        candidates.append(str(Path(os.environ["MTLV_DATA_DIR"]).parent / "reference" / "thesis-results.csv"))
    candidates += [str(p / "shared" / "reference" / "thesis-results.csv") for p in (ROOT.parent, ROOT.parents[1])]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def test_shipped_file_equals_the_shared_transcription():
    shared = shared_reference()
    if shared is None:
        pytest.skip("no shared thesis-results.csv (set MTLV_REFERENCE_CSV to check the shipped file against it)")
    read = dict(dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(pd.read_csv(PACKAGED, **read), pd.read_csv(shared, **read))


def test_published_numbers_spot_checks():
    ref = Reference.load()
    assert len(ref) == 396
    key = ["dataset", "table", "arch", "model", "setting", "metric"]
    assert not ref.frame.duplicated(key).any()
    # Table 4.3 (Open-I), 4.6 (OHSUMED), C.1, 4.4, 4.5, 4.9 as printed in the thesis (percent / 100)
    assert ref.entry(1, "openi", "mtl", "bluebert", "f1_macro") == (0.9064, 0.0132)
    assert ref.entry(1, "openi", "gmhl", "bert", "f1_macro") == (0.6373, 0.0538)
    assert ref.entry(2, "openi", "gmhl", "bert", "f1_macro", "label-k3") == (0.4669, 0.0288)
    assert ref.value(3, "openi", "gmtl-vs-mtl", "bert", "p_value_f1_macro") == 0.002
    assert ref.entry(4, "openi", "mtl", "bluebert", "f1", "Atelectasis") == (0.977, 0.0048)
    assert ref.value(5, "openi", "stl", "bluebert", "elapsed_s") == 12960.0
    fractions = ref.frame[ref.frame.metric != "elapsed_s"]
    assert fractions.value.between(0, 1).all() and fractions["std"].dropna().between(0, 0.5).all()


def test_every_label_of_the_loaders_finds_its_published_f1():
    ref = Reference.load()
    for name in OPENI_LABELS:           # slashed MeSH names, e.g. lung/hypoinflation
        assert ref.entry(4, "openi", "gmtl", "bluebert", "f1", name) is not None, name
    for name in OHSUMED_CATEGORIES.values():   # "C04 Neoplasms" -> C04
        assert ref.entry(4, "ohsumed", "mtl", "biobert", "f1", name) is not None, name
    assert thesis_label("openi", "thoracic vertebrae/degenerative") == "thoracic vertebrae degenerative"
    assert thesis_label("openi", "thoracic vertebrae deg.") == "thoracic vertebrae degenerative"
    assert thesis_label("ohsumed", "C23 Pathological Conditions Signs and Symptoms") == "C23"


def test_models_outside_the_study_use_the_named_stand_in():
    assert Reference.load().entry(1, "openi", "mtl", "minilm", "f1_macro") is None
    stand_in = Reference.load(fallback_model="bert")
    assert stand_in.model_for("openi", "minilm") == "bert" and stand_in.model_for("openi", "biobert") == "biobert"
    assert stand_in.entry(1, "openi", "mtl", "minilm", "f1_macro") == (0.8572, 0.0166)
    assert stand_in.entry(1, "demo", "mtl", "minilm", "f1_macro") is None
    assert stand_in.model_for("openi", "-") is None
    assert stand_in.chosen_setting("ohsumed", "gmhl", "minilm") == "label-k4"        # Table 4.6, BERT's GMHL
    assert stand_in.chosen_setting("openi", "mtl", "bert") == ""                          # a baseline has no encoder
