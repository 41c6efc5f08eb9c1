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
"""
from __future__ import annotations

import logging
import time

import numpy as np
import torch
import torch.nn.functional as F

from mtlv.errors import ConfigError

log = logging.getLogger(__name__)

MEASURES = ("cosine", "lookahead")


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
                  model=None, tokenizer=None) -> tuple[np.ndarray, dict]:
    """((m x m) affinity, cost) from `steps` training steps on the given documents.

    Row i, column j: the effect of label i's gradient on label j (symmetric for `cosine`).
    `model`/`tokenizer` may be passed to skip loading (tests)."""
    from mtlv.models.encoder import load_encoder, load_tokenizer
    from mtlv.models.heads import pool

    if measure not in MEASURES:
        raise ConfigError(f"clustering.measure={measure!r}: use one of {list(MEASURES)}")
    if int(steps) < 1:
        raise ConfigError(f"clustering.steps={steps}: the affinity run needs at least 1 step")
    start = time.time()
    Y = torch.as_tensor(np.asarray(labels), dtype=torch.float32)
    m = Y.shape[1]
    torch.manual_seed(seed)
    model = model if model is not None else load_encoder(encoder, False, random_init, seed)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(encoder)
    model.train()
    head = _shared_head(model.config.hidden_size, m, seed)
    optimizer = torch.optim.AdamW([{"params": model.parameters(), "lr": lr},
                                   {"params": head.parameters(), "lr": head_lr}])
    shared = [p for p in model.parameters() if p.requires_grad]
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    rng = np.random.default_rng(seed)
    total = torch.zeros(m, m, dtype=torch.float64)
    for _ in range(int(steps)):
        rows = rng.choice(len(texts), size=min(int(batch_size), len(texts)), replace=False)
        enc = tokenizer([texts[i] for i in rows], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt")
        target = Y[rows]

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
    affinity = (total / int(steps)).numpy()
    cost = {"measure": measure, "steps": int(steps), "batch_size": int(batch_size), "seconds": time.time() - start}
    log.info("task affinity (%s): %d steps in %.1f s", measure, cost["steps"], cost["seconds"])
    return affinity, cost


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
