"""Atomic file output: a crash never leaves a half-written file that a later run trusts."""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import yaml

from mtlv.errors import ConfigError


def _create_new(parent: Path, prefix: str, suffix: str, create: Callable[[Path], None]) -> Path:
    """A new file or folder with a random name in `parent`, made by `create` with the mode open() or
    mkdir() gives anything new (0666/0777 less the umask, or the folder's default ACL). tempfile's
    mkstemp/mkdtemp make it private (0600/0700), and the rename kept that: colleagues on a shared
    cluster could not read a result."""
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            create(path)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary name like {parent / prefix}*{suffix}")


def _new_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def umask() -> int:
    """The process's umask, read without setting it (os.umask can only read it by changing it for a
    moment, when another thread may be creating a file)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:  # Linux >= 4.7
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def honour_umask(path: str | os.PathLike) -> Path:
    """Give a file written private (0600) by a library the mode open() would have given it."""
    os.chmod(path, 0o666 & ~umask())
    return Path(path)


def new_dir(parent: str | os.PathLike, prefix: str, suffix: str = ".tmp") -> Path:
    """A new, empty folder in `parent` with a random name, as mkdir makes it (honours the umask)."""
    return _create_new(Path(parent), prefix, suffix, lambda p: os.mkdir(p, 0o777))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it over `path` only on success. The file has the
    mode open() would give `path` (the umask decides), whoever writes it afterwards."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_new(path.parent, f".{path.name}.", ".tmp", _new_file)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to `path`; on success it replaces `path`. A crash leaves the
    previous folder (or none), never a half-written one that a later run would trust."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_dir(path.parent, f".{path.name}.")
    try:
        yield tmp
        old = path.parent / f".{path.name}.old.{os.getpid()}"
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Strict JSON: a number that is not finite (the NaN F1 of a label without positives) is written as null,
    since JSON has no NaN; Python's bare `NaN` is refused by jq, JavaScript and other strict readers."""
    return write_text(path, json.dumps(_finite(obj), indent=2, sort_keys=True, default=str, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike, numbers: bool | Iterable[str] = False) -> Any:
    """`numbers`: where the file's nulls stand for numbers that were not finite, which come back as NaN: True
    for the whole file (metrics.json), or the top-level keys that hold numbers (result.json's "test", ...)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if numbers is True:
        return _nan_for_null(data)
    for key in () if numbers is False else numbers:
        if key in data:
            data[key] = _nan_for_null(data[key])
    return data


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(value) for value in obj]
    return obj


def _nan_for_null(obj: Any) -> Any:
    if obj is None:
        return math.nan
    if isinstance(obj, dict):
        return {key: _nan_for_null(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_nan_for_null(value) for value in obj]
    return obj


def write_yaml(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


def read_yaml(path: str | os.PathLike) -> Any:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def stable_hash(obj: Any, length: int = 12) -> str:
    """Short content hash of a JSON-serialisable object (keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:length]


def check_writable(folder: str | Path, key: str = "paths.output_dir",
                   fix: str = "set MTLV_OUTPUT_DIR=/a/writable/folder or paths.output_dir=/a/writable/folder") -> None:
    """Create `folder` and write a file in it, before the run writes anything there: a read-only folder is one
    ConfigError naming `key` and the `fix`, not an OSError from the first file written."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".mtlv-write-test-"):
            pass
    except OSError as err:
        raise ConfigError(f"{key}={folder}: cannot write there ({err.strerror or err}); {fix}") from err
