"""Task grouping: which tasks (labels) are learned together.

- `partition.py`: `TaskGrouping`, a partition of the labels plus a placement (heads or models);
  every architecture is one of these.
- `base.py` + `methods.py`: grouping methods behind one interface (`GroupingMethod`), chosen with
  `_target_` in conf/clustering/*.yaml: none, given groups, or groups learned by clustering task
  features (`features.py` name/description embeddings, `cooccurrence.py`, `affinity.py`).
- `clusterers.py` (k-medoids, agglomerative; `kmedoids.py` holds PAM), `choose_k.py` (k=auto),
  `plots.py` (elbow curve, label map, similarity matrix).

Clustering names are re-exported lazily so that `mtlv.grouping.kmedoids` can be used without
importing torch and transformers (which `features` needs).
"""
from __future__ import annotations

import importlib
from typing import Any

from mtlv.grouping.partition import PLACEMENTS, TaskGrouping, all_in_one, from_spec, one_per_label, resolve_groups

_EXPORTS = {
    "embed_texts": "features", "task_texts": "features", "task_features": "features",
    "fit_kmedoids": "kmedoids", "cluster_groups": "kmedoids", "elbow": "kmedoids", "format_elbow": "kmedoids",
    "plot_elbow": "plots", "plot_label_map": "plots",
}
__all__ = ["PLACEMENTS", "TaskGrouping", "all_in_one", "from_spec", "one_per_label", "resolve_groups",
           *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mtlv.grouping' has no attribute '{name}'")
    return getattr(importlib.import_module(f"mtlv.grouping.{_EXPORTS[name]}"), name)
