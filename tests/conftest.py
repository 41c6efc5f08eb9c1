"""Shared fixtures. Real datasets come from MTLV_DATA_DIR (default: ../shared/data beside the
repository); tests that need them are marked `data` and skip where the folder is absent. Tests
marked `gpu` need CUDA and skip where it is absent (CI)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("MTLV_DATA_DIR", ROOT.parent / "shared" / "data"))
OPENI_CSV = DATA_DIR / "openi" / "indiana_reports.csv"
OHSUMED_DIR = DATA_DIR / "ohsumed-sample" / "ohsumed-first-20000-docs"


@pytest.fixture(scope="session")
def openi_csv() -> Path:
    if not OPENI_CSV.exists():
        pytest.skip(f"Open-I CSV not found at {OPENI_CSV} (set MTLV_DATA_DIR)")
    return OPENI_CSV


@pytest.fixture(scope="session")
def ohsumed_dir() -> Path:
    if not OHSUMED_DIR.exists():
        pytest.skip(f"OHSUMED sample not found at {OHSUMED_DIR} (set MTLV_DATA_DIR)")
    return OHSUMED_DIR



def pytest_collection_modifyitems(config, items):
    gpu = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs CUDA (marker gpu; scripts/gpu_check.sh runs these on a GPU)")
        for item in gpu:
            item.add_marker(skip)
