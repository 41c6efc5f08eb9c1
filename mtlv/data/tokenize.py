"""Tokenize once, cache on disk, share between runs and between the parallel jobs of a sweep.

The cache key is (texts, tokenizer identity incl. its local files' contents, max_length); sequences are stored unpadded (padding is
per batch), as one flat int32 array plus offsets.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from mtlv.io import atomic_path, stable_hash

log = logging.getLogger(__name__)


@dataclass
class TokenizedTexts:
    flat: np.ndarray  # all token ids, concatenated
    offsets: np.ndarray  # len n+1
    path: Path | None = None
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.flat[self.offsets[i]: self.offsets[i + 1]]


_WEIGHT_SUFFIXES = {".bin", ".safetensors", ".pt", ".pth", ".h5", ".msgpack", ".onnx", ".ckpt"}


def tokenizer_files(name_or_path: str) -> list[tuple[str, str]]:
    """(file name, content hash) of a local tokenizer folder's non-weight files: a tokenizer replaced
    in place at the same path gets a new cache key. A Hub id is taken at its word."""
    path = Path(str(name_or_path)).expanduser()
    if not path.is_dir():
        return []
    return sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest()[:16]) for p in path.iterdir()
                  if p.is_file() and p.suffix not in _WEIGHT_SUFFIXES and not p.name.startswith("."))


def tokenizer_identity(tokenizer) -> list:
    name = getattr(tokenizer, "name_or_path", "")
    return [type(tokenizer).__name__, name, len(tokenizer), tokenizer.init_kwargs.get("do_lower_case"),
            tokenizer_files(name)]


def tokenize(texts: list[str], tokenizer, max_length: int, batch_size: int = 1024) -> TokenizedTexts:
    lengths, chunks = [], []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start: start + batch_size], truncation=True, max_length=max_length,
                        add_special_tokens=True, return_attention_mask=False, return_token_type_ids=False)
        for ids in enc["input_ids"]:
            chunks.append(np.asarray(ids, dtype=np.int32))
            lengths.append(len(ids))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(lengths)
    flat = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    return TokenizedTexts(flat, offsets)


def tokenize_cached(texts: list[str], tokenizer, max_length: int, cache_dir: str | Path | None) -> TokenizedTexts:
    if cache_dir is None:
        return tokenize(texts, tokenizer, max_length)
    key = stable_hash([stable_hash(texts, 32), tokenizer_identity(tokenizer), int(max_length)], 16)
    path = Path(cache_dir) / "tokens" / f"{key}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    # The lock makes parallel sweep jobs wait for one tokenization instead of each doing it.
    with FileLock(str(path) + ".lock", timeout=3600):
        if path.exists():
            try:  # a damaged file (copied half, disk full) is tokenized again, never trusted
                with np.load(path) as saved:
                    cached = TokenizedTexts(saved["flat"], saved["offsets"], path, from_cache=True)
                if len(cached) == len(texts) and cached.offsets[-1] == len(cached.flat):
                    return cached
                log.warning("token cache %s does not match its texts: tokenizing again", path)
            except Exception as err:  # noqa: BLE001 - any unreadable cache is recomputed
                log.warning("token cache %s is unreadable (%s): tokenizing again", path, err)
        tokens = tokenize(texts, tokenizer, max_length)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, flat=tokens.flat, offsets=tokens.offsets)
        tokens.path = path
        log.info("tokenized %d texts (max_length=%d) -> %s", len(texts), max_length, path)
        return tokens
