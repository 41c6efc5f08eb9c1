"""Finding which tasks (labels) belong together: label embeddings clustered with k-medoids.

Names are re-exported lazily so that `mtlv.clustering.kmedoids` can be used without importing
torch and transformers (which `features` needs).
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "embed_texts": "features", "task_texts": "features", "task_features": "features",
    "fit_kmedoids": "kmedoids", "cluster_groups": "kmedoids", "elbow": "kmedoids", "format_elbow": "kmedoids",
    "plot_elbow": "plots", "plot_label_map": "plots",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mtlv.clustering' has no attribute '{name}'")
    return getattr(importlib.import_module(f"mtlv.clustering.{_EXPORTS[name]}"), name)
