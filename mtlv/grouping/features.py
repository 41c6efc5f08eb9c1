"""Task features for clustering: each label's name or description, embedded by an encoder."""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from mtlv.errors import ConfigError
from mtlv.io import atomic_path, stable_hash

log = logging.getLogger(__name__)

# torch and the encoders are imported where a label is embedded, so the checks read these lists cheaply
FEATURES = ("name", "description")    # clustering.feature: what text stands for a label
SCALES = ("minmax", None)             # clustering.scale


def _encoder_identity(encoder: str) -> dict:
    """What the cache key must know about an encoder beyond its name.

    A local folder can be retrained in place, so its weight files' sizes and mtimes are part of
    the identity; a Hub id is taken at its word.
    """
    from mtlv.models import encoder as enc

    path = Path(enc.resolve_name(encoder)).expanduser()
    files = []
    if path.is_dir():
        files = sorted(
            (p.name, p.stat().st_size, p.stat().st_mtime_ns)
            for p in path.iterdir()
            if p.is_file() and p.suffix in {".bin", ".safetensors", ".json", ".txt", ".model"}
        )
    return {"encoder": str(encoder), "files": files}


def _cache_file(cache_dir: Path, identity: dict, max_length: int, random_init: dict | None, text: str) -> Path:
    key = stable_hash(
        {"id": identity, "max_length": max_length, "random_init": random_init, "seed": 0, "text": text},
        length=24,
    )
    return cache_dir / "embeddings" / f"{key}.npz"


def _load_cached(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return np.asarray(data["embedding"], dtype=np.float32)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        # A damaged entry is only a cache miss; it is rewritten below.
        log.warning("ignoring unreadable embedding cache file %s", path)
        return None


def _encode(texts: list[str], encoder: str, max_length: int, batch_size: int,
            random_init: dict | None, trust_remote_code: bool) -> np.ndarray:
    import torch

    from mtlv.models import encoder as enc

    tokenizer = enc.load_tokenizer(encoder, trust_remote_code)
    model = enc.load_encoder(encoder, trust_remote_code=trust_remote_code, random_init=random_init, seed=0)
    model.to("cpu").eval()
    # Asking for more tokens than the position table holds would crash inside the model.
    max_length = min(int(max_length), enc.model_max_length(encoder, random_init))
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            out.append(pooled.float().numpy())
    return np.concatenate(out).astype(np.float32)


def embed_texts(
    texts: list[str],
    encoder: str,
    max_length: int = 64,
    batch_size: int = 32,
    cache_dir: str | None = None,
    random_init: dict | None = None,
    trust_remote_code: bool = False,
) -> np.ndarray:
    """Attention-masked mean of the encoder's last-layer token embeddings, one float32 row per text.

    With `cache_dir`, each text's vector is kept in `cache_dir/embeddings/<hash>.npz`; when every
    text is cached the encoder is not loaded at all.
    """
    texts = [str(t) for t in texts]
    if batch_size < 1 or max_length < 1:
        raise ConfigError(f"embed_texts: batch_size ({batch_size}) and max_length ({max_length}) must be >= 1")
    unique = list(dict.fromkeys(texts))  # identical texts share one vector, bit for bit
    vectors: dict[str, np.ndarray] = {}
    files: dict[str, Path] = {}
    if cache_dir is not None:
        identity = _encoder_identity(encoder)
        for text in unique:
            files[text] = _cache_file(Path(cache_dir), identity, max_length, random_init, text)
            cached = _load_cached(files[text])
            if cached is not None:
                vectors[text] = cached
    missing = [t for t in unique if t not in vectors]
    if missing:
        log.info("embedding %d text(s) with %s (%d cached)", len(missing), encoder, len(unique) - len(missing))
        for text, vec in zip(missing, _encode(missing, encoder, max_length, batch_size, random_init, trust_remote_code)):
            vectors[text] = vec
            if cache_dir is not None:
                with atomic_path(files[text]) as tmp, open(tmp, "wb") as fh:
                    np.savez(fh, embedding=vec)  # a file handle stops numpy appending ".npz" to tmp
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([vectors[t] for t in texts]).astype(np.float32)


def task_texts(label_names: list[str], descriptions: dict[str, str], feature: str) -> list[str]:
    """The text that stands for each label: its name, or its description."""
    if feature not in FEATURES:
        raise ConfigError(f"clustering.feature='{feature}' is not known; use one of {list(FEATURES)}")
    if feature == "name":
        return [str(name) for name in label_names]
    descriptions = descriptions or {}
    missing = [n for n in label_names if not str(descriptions.get(n) or "").strip()]
    if missing:
        raise ConfigError(
            f"clustering.feature=description needs a description for every label, but "
            f"{len(missing)} of {len(label_names)} have none: {missing}. "
            f"Fix: for custom data pass dataset.source.descriptions_path=<yaml/json/csv> mapping each "
            f"label name to a one- or two-sentence description, or cluster on the label names instead "
            f"(clustering=kmedoids_label, or clustering.feature=name)."
        )
    return [str(descriptions[n]).strip() for n in label_names]


def task_features(
    label_names: list[str],
    descriptions: dict[str, str],
    feature: str,
    encoder: str,
    scale: str | None = "minmax",
    cache_dir: str | None = None,
    random_init: dict | None = None,
    max_length: int = 64,
    trust_remote_code: bool = False,
) -> np.ndarray:
    """(m x d) label embeddings, MinMax-scaled per dimension (as the reference study did) by default."""
    if scale not in SCALES:
        raise ConfigError(f"clustering.scale='{scale}' is not known; use one of {list(SCALES)} (null = raw)")
    texts = task_texts(label_names, descriptions, feature)
    X = embed_texts(texts, encoder, max_length=max_length, cache_dir=cache_dir,
                    random_init=random_init, trust_remote_code=trust_remote_code)
    if scale == "minmax" and len(X):
        from sklearn.preprocessing import MinMaxScaler

        X = MinMaxScaler().fit_transform(X).astype(np.float32)
    return X
