"""Predictions of a data-parallel (DDP) run, gathered so every rank holds all documents once.

Lightning's prediction sampler gives each rank a disjoint shard (its validation sampler may also
repeat documents to even out the shards), so each rank's `trainer.predict` output covers only part
of the split: gathered and de-duplicated by document index, every rank evaluates the same full
split, and only rank 0 writes files.
"""
from __future__ import annotations

import numpy as np
import torch


def world_size() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_by_document(probs: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ranks' rows, one per document, sorted by document index (a no-op in one process)."""
    if world_size() > 1:
        parts: list = [None] * world_size()
        torch.distributed.all_gather_object(parts, (probs, docs))  # any backend (gloo, nccl); small arrays
        probs = np.concatenate([p for p, _ in parts])
        docs = np.concatenate([d for _, d in parts])
    docs, first = np.unique(docs, return_index=True)  # sorted; a repeated (padding) document counts once
    return probs[first], docs
