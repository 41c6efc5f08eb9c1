"""Study tests read a CSV MTLV has never seen (tests/helpers.py write_notes), written per test."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import write_notes


@pytest.fixture
def notes_csv(tmp_path) -> Path:
    return write_notes(tmp_path / "notes.csv")
