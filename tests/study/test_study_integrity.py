"""A study says what it ran and what it did not: cells it cannot run are dropped in the plan (never launched),
knowable errors stop the plan, and whatever the output folder is called the report is written."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import CSV_OPTIONS, run_cli


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_study_reports_into_any_folder_name(notes_csv, tmp_path):
    """Non-ASCII, `,` and `=` in the output folder: the study quotes the report's `out=` override."""
    out = tmp_path / "études, run=1"
    proc = run_cli("mtlv.study", ["study=quick", "study.archs=[baseline]", *CSV_OPTIONS, f"dataset.path={notes_csv}",
                                  "model=tiny"], out, timeout=500)
    folder = Path(re.search(r"^folder: (.+)$", proc.stdout, re.M).group(1))
    assert str(folder).startswith(str(out)) and (folder / "report" / "report.md").exists()
    assert "Traceback" not in proc.stderr
