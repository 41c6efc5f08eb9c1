"""Archives and raw bytes shared by the dataset loaders: safe, once-only tar extraction and
UTF-8 decoding that never crashes."""
from __future__ import annotations

import logging
import os
import re
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from mtlv.errors import DataError
from mtlv.io import new_dir, stable_hash

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


def decode_bytes(raw: bytes) -> tuple[str, bool]:
    """UTF-8 text, with undecodable bytes replaced (and flagged) instead of crashing."""
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


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
