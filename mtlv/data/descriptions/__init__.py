"""Packaged one- or two-sentence label descriptions, embedded to cluster related tasks."""
from __future__ import annotations

from pathlib import Path

import yaml

from mtlv.errors import ConfigError, DataError

_HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem for p in _HERE.glob("*.yaml"))


def load_descriptions(name: str) -> dict[str, str]:
    """Label name -> description for a packaged dataset (e.g. "openi", "ohsumed")."""
    path = _HERE / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"no packaged label descriptions for dataset '{name}' (looked for {path}); "
                          f"packaged: {available()}. For your own data set "
                          "dataset.source.descriptions_path=... to a YAML/JSON/CSV file")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise DataError(f"{path} must map each label name to a description string; reinstall mtlv")
    return {str(k): " ".join(v.split()) for k, v in data.items()}
