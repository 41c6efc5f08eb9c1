"""Archives and raw bytes shared by the dataset loaders: safe, once-only tar extraction and
UTF-8 decoding that never crashes."""
from __future__ import annotations

import codecs
import logging
import os
import re
import shutil
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mtlv.errors import DataError
from mtlv.io import new_dir, stable_hash

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


class _Errors(threading.local):
    """The (start, end) byte spans the decoding in progress on this thread could not decode."""

    spans: list[tuple[int, int]] | None = None


_ERRORS = _Errors()


def _replace_and_count(err: UnicodeDecodeError) -> tuple[str, int]:
    _ERRORS.spans.append((err.start, err.end))
    return "\ufffd", err.end


codecs.register_error("mtlv.replace_and_count", _replace_and_count)


@dataclass(frozen=True)
class Decoded:
    """Text decoded with every undecodable byte sequence replaced by U+FFFD, and what was replaced: the
    bytes that were not valid in the encoding (a U+FFFD written in the file itself is valid text and is
    not counted) and the 1-based lines of the file that hold them (empty for UTF-16/32)."""

    text: str
    bad_bytes: int
    bad_lines: list[int]


def decode_counting(raw: bytes, encoding: str = "utf-8") -> Decoded:
    _ERRORS.spans = []
    try:
        text = raw.decode(encoding, errors="mtlv.replace_and_count")
        spans = _ERRORS.spans
    finally:
        _ERRORS.spans = None
    lines: list[int] = []
    if spans and "\n".encode(encoding) == b"\n":  # an ASCII-compatible encoding: lines end in the byte \n
        line, previous = 1, 0
        for start, _ in spans:
            line += raw.count(b"\n", previous, start)
            previous = start
            if not lines or lines[-1] != line:
                lines.append(line)
    return Decoded(text, sum(end - start for start, end in spans), lines)


def decode_bytes(raw: bytes) -> tuple[str, bool]:
    """UTF-8 text, with undecodable bytes replaced (and flagged) instead of crashing."""
    decoded = decode_counting(raw)
    return decoded.text, decoded.bad_bytes > 0


def refuse_special_file(path: Path) -> None:
    """A DataError when dataset.path is a pipe, device or socket: reading one blocks or reads a stream once,
    and "not found" would be wrong."""
    import stat

    if path.exists() and not path.is_file() and not path.is_dir():
        what = "a named pipe (FIFO)" if stat.S_ISFIFO(path.stat().st_mode) else "a device or socket"
        raise DataError(f"dataset.path={path} is not a regular file but {what}; save the data to a file and set "
                        "dataset.path=... to it")


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a tar archive into `dest`, refusing any member that could land outside it."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                parts = PurePosixPath(m.name).parts
                if m.name.startswith(("/", "\\")) or ".." in parts or (m.issym() or m.islnk()):
                    raise DataError(
                        f"archive {archive} has an unsafe member '{m.name}' (absolute path, '..' or "
                        "link); refusing to extract it. Re-download the archive from its official source"
                    )
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12: second line of defence
                tar.extractall(dest, filter="data")
            else:
                tar.extractall(dest, members=[m for m in members if m.isfile() or m.isdir()])
    except (tarfile.TarError, EOFError, OSError) as exc:
        reason = " ".join(str(exc).split())
        raise DataError(f"cannot read archive {archive} ({reason}); it is corrupt or not a "
                        "tar.gz. Delete it and download it again") from exc


def extract_once(archive: Path) -> Path:
    """Extract next to the archive (or, if that folder is read-only, into the user cache) once.

    Extraction goes to a temporary folder renamed into place only when complete, so an
    interrupted run never leaves a half-extracted folder that a later run would trust.
    """
    stem = re.sub(r"(\.tar\.gz|\.tgz)$", "", archive.name, flags=re.I)
    target = archive.parent / f"{stem}_extracted"
    if target.is_dir():
        return target
    try:
        tmp = new_dir(archive.parent, f".{target.name}.")  # as mkdir makes it: the umask decides who reads it
    except OSError:  # e.g. read-only shared data folder
        st = archive.stat()
        key = stable_hash([str(archive.resolve()), st.st_size, st.st_mtime_ns])
        cache = Path(os.environ.get("MTLV_CACHE_DIR", Path.home() / ".cache" / "mtlv"))
        target = cache / "extracted" / f"{stem}-{key}"
        if target.is_dir():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = new_dir(target.parent, f".{target.name}.")
    try:
        safe_extract(archive, tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # lost a race to a concurrent run: theirs is complete
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("extracted %s to %s", archive, target)
    return target
