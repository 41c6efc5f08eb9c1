"""Task features from training dynamics: how much learning one label helps another, measured in a
short shared (MTL) run on the fold's training documents.

- `cosine` (cheap): cosine similarity of the labels' loss gradients on the shared representation
  (the pooled encoder output), averaged over the steps. One forward/backward per step.
- `lookahead` (TAG, Fifty et al., NeurIPS 2021): after a lookahead SGD step on the shared encoder
  with label i's gradient alone, the relative drop of label j's loss, 1 - L_j(after) / L_j(before),
  averaged over the steps. Costs one extra backward and forward through the encoder per label.

Every label's head starts from the same weights, so that early in the run two labels' encoder
gradients differ because of their labels, not because of random head directions (which would
otherwise dominate a short run and make every pair look unrelated).

The run takes `device` (clustering.device: auto = CUDA when there is one), and `cached_affinity`
keeps its result under the cache dir: it depends on the fold's training documents and the run's
options, not on k or the clusterer, so the cells of one fold share one run.
"""
from __future__ import annotations

import inspect
import json
import logging
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from filelock import FileLock

from mtlv.errors import ConfigError
from mtlv.io import atomic_path, stable_hash

log = logging.getLogger(__name__)

MEASURES = ("cosine", "lookahead")


def resolve_device(device: str | None) -> torch.device:
    """clustering.device as a torch device: `auto` is CUDA when there is one, else the CPU; an explicit
    device that this machine cannot use is a ConfigError (checked before any work: mtlv/grouping/checks.py)."""
    text = "auto" if device is None else str(device)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise ConfigError(f"clustering.device={text!r}: not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"clustering.device={text!r}: no CUDA GPU is available here; use "
                              "clustering.device=auto (it picks what there is) or clustering.device=cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"clustering.device={text!r}: this machine has {torch.cuda.device_count()} CUDA "
                              f"device(s); use cuda:0..cuda:{torch.cuda.device_count() - 1} or auto")
    elif dev.type != "cpu":
        raise ConfigError(f"clustering.device={text!r}: the affinity run supports cpu and cuda; use auto, cpu or cuda")
    return dev


def _shared_head(hidden: int, num_labels: int, seed: int) -> torch.nn.Linear:
    head = torch.nn.Linear(hidden, num_labels)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        row = torch.randn(hidden, generator=g) / hidden ** 0.5
        head.weight.copy_(row.expand(num_labels, hidden))
        head.bias.zero_()
    return head


def task_affinity(texts: list[str], labels: np.ndarray, encoder: str, measure: str = "cosine", steps: int = 30,
                  batch_size: int = 16, lr: float = 1e-4, head_lr: float = 1e-3, max_length: int = 64,
                  pooling: str = "mean", random_init: dict | None = None, seed: int = 0,
                  model=None, tokenizer=None, device: str | None = "cpu") -> tuple[np.ndarray, dict]:
    """((m x m) affinity, cost) from `steps` training steps on the given documents.

    Row i, column j: the effect of label i's gradient on label j (symmetric for `cosine`).
    `model`/`tokenizer` may be passed to skip loading (tests). The math is fp32 on any device
    (on CUDA, matmuls may use TF32 when the process allows it)."""
    from mtlv.models.encoder import load_encoder, load_tokenizer
    from mtlv.models.heads import pool

    if measure not in MEASURES:
        raise ConfigError(f"clustering.measure={measure!r}: use one of {list(MEASURES)}")
    if int(steps) < 1:
        raise ConfigError(f"clustering.steps={steps}: the affinity run needs at least 1 step")
    dev = resolve_device(device)
    start = time.time()
    Y = torch.as_tensor(np.asarray(labels), dtype=torch.float32, device=dev)
    m = Y.shape[1]
    torch.manual_seed(seed)
    model = model if model is not None else load_encoder(encoder, False, random_init, seed)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(encoder)
    # Weights are made on the CPU (same seed, same values) and then moved, so devices start alike.
    model.to(dev).float().train()
    head = _shared_head(model.config.hidden_size, m, seed).to(dev)
    optimizer = torch.optim.AdamW([{"params": model.parameters(), "lr": lr},
                                   {"params": head.parameters(), "lr": head_lr}])
    shared = [p for p in model.parameters() if p.requires_grad]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    rng = np.random.default_rng(seed)
    total = torch.zeros(m, m, dtype=torch.float64, device=dev)
    for _ in range(int(steps)):
        rows = rng.choice(len(texts), size=min(int(batch_size), len(texts)), replace=False)
        enc = tokenizer([texts[i] for i in rows], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt").to(dev)
        target = Y[torch.as_tensor(rows, device=dev)]

        def losses_of(z: torch.Tensor) -> torch.Tensor:
            logits = head(z)
            return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(0)

        z = pool(model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]), enc["attention_mask"], pooling)
        losses = losses_of(z)
        if measure == "cosine":
            grads = torch.stack([torch.autograd.grad(losses[j], z, retain_graph=True)[0].reshape(-1)
                                 for j in range(m)]).double()
            unit = grads / grads.norm(dim=1, keepdim=True).clamp(min=1e-12)
            total += unit @ unit.T
        else:
            before = losses.detach().double()
            for i in range(m):
                grads = torch.autograd.grad(losses[i], shared, retain_graph=True, allow_unused=True)
                ahead = {n: p.detach() - lr * (g if g is not None else 0) for n, p, g in zip(names, shared, grads)}
                with torch.no_grad():
                    out = torch.func.functional_call(model, ahead, kwargs=dict(
                        input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]))
                    after = losses_of(pool(out, enc["attention_mask"], pooling)).double()
                total[i] += 1.0 - after / before.clamp(min=1e-12)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
    affinity = (total / int(steps)).cpu().numpy()
    cost = {"measure": measure, "steps": int(steps), "batch_size": int(batch_size), "seconds": time.time() - start,
            "device": str(dev)}
    log.info("task affinity (%s): %d steps on %s in %.1f s", measure, cost["steps"], dev, cost["seconds"])
    return affinity, cost


def affinity_key(texts: list[str], labels: np.ndarray, encoder: str, measure: str, steps: int, batch_size: int,
                 lr: float, head_lr: float, max_length: int, pooling: str, random_init: dict | None,
                 seed: int) -> str:
    """Cache key of one affinity run: the training documents' texts and labels themselves (so an edited
    data file or another fold is another key), the encoder's identity and every option of the run.

    Not the device: the math is the same on every device. A GPU result differs from a CPU one by
    float rounding and, while the encoder's dropout is on, by its random masks (CUDA draws them from
    another generator): two samples of the same short-run estimate, either of which a cell may use.
    Not the clustering options (k, algorithm, k_select, linkage, backend, k_max): they only read the matrix."""
    from mtlv.grouping.features import _encoder_identity

    return stable_hash({"texts": [str(t) for t in texts], "labels": np.asarray(labels).astype(int).tolist(),
                        "encoder": _encoder_identity(encoder), "measure": measure, "steps": int(steps),
                        "batch_size": int(batch_size), "lr": float(lr), "head_lr": float(head_lr),
                        "max_length": int(max_length), "pooling": pooling, "random_init": random_init,
                        "seed": int(seed)}, length=24)


def _load(path: Path) -> tuple[np.ndarray, dict] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return np.asarray(data["affinity"], dtype=np.float64), json.loads(str(data["cost"]))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        log.warning("ignoring unreadable affinity cache file %s", path)  # recomputed and rewritten
        return None


def cached_affinity(texts: list[str], labels: np.ndarray, encoder: str, cache_dir: str | Path | None = None,
                    **options) -> tuple[np.ndarray, dict]:
    """task_affinity(texts, labels, encoder, **options), kept in `cache_dir/affinity/<key>.npz`. A lock
    makes parallel cells of one fold wait for the first one's run instead of repeating it; a hit
    returns that run's own cost record (its steps, seconds, device) with `"cached": true`."""
    run = inspect.signature(task_affinity).bind(texts, labels, encoder, **options)
    run.apply_defaults()
    resolve_device(run.arguments["device"])  # a bad device fails before any waiting or loading
    if cache_dir is None:
        return task_affinity(*run.args, **run.kwargs)
    keyed = {n: v for n, v in run.arguments.items() if n not in ("model", "tokenizer", "device")}
    path = Path(cache_dir) / "affinity" / f"{affinity_key(**keyed)}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=3600):
        hit = _load(path)
        if hit is not None:
            A, cost = hit
            log.info("task affinity (%s): cached in %s (%d steps on %s, %.1f s)", cost["measure"], path,
                     cost["steps"], cost.get("device", "cpu"), cost["seconds"])
            return A, {**cost, "cached": True}
        A, cost = task_affinity(*run.args, **run.kwargs)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, affinity=A, cost=json.dumps(cost))  # a file handle stops numpy appending ".npz"
    return A, {**cost, "cached": False}


def affinity_to_distance(A: np.ndarray, measure: str) -> np.ndarray:
    """Symmetrised affinity -> distance in [0, 1] with a zero diagonal (cosine: (1 - cos) / 2;
    lookahead: min-max scaled off-diagonal, higher affinity = closer)."""
    S = (np.asarray(A, dtype=np.float64) + np.asarray(A, dtype=np.float64).T) / 2.0
    if measure == "cosine":
        D = (1.0 - S) / 2.0
    else:
        off = S[~np.eye(len(S), dtype=bool)]
        lo, hi = (off.min(), off.max()) if off.size else (0.0, 1.0)
        D = (hi - S) / (hi - lo) if hi > lo else np.zeros_like(S)
    D = np.clip(D, 0.0, None)
    np.fill_diagonal(D, 0.0)
    return D
