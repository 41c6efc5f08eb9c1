"""The files a learned grouping writes beside its groups.yaml (a cell folder, or `mtlv.cluster`'s folder).
Here, on the grouping floor, because grouping methods write them; a cell's layout (mtlv/layout.py)
reaches them through `CellLayout.grouping_files`."""
from __future__ import annotations

from pathlib import Path

GROUPS_YAML = "groups.yaml"


class GroupingFiles:
    """What a learned grouping writes beside its groups.yaml (a cell folder, or `mtlv.cluster`'s folder)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @property
    def groups_yaml(self) -> Path:
        return self.folder / GROUPS_YAML

    @property
    def elbow_txt(self) -> Path:
        return self.folder / "elbow.txt"

    @property
    def elbow_json(self) -> Path:
        return self.folder / "elbow.json"

    @property
    def elbow_png(self) -> Path:
        return self.folder / "elbow.png"

    @property
    def label_map_png(self) -> Path:
        return self.folder / "label_map.png"

    @property
    def k_choice(self) -> Path:
        return self.folder / "k_choice.json"

    @property
    def similarity_csv(self) -> Path:
        return self.folder / "task_similarity.csv"

    @property
    def similarity_png(self) -> Path:
        return self.folder / "task_similarity.png"

    @property
    def affinity_cost(self) -> Path:
        return self.folder / "affinity_cost.json"

    def written(self) -> list[Path]:
        """Every file a learned grouping writes beside groups.yaml that is there (none of the cell's others)."""
        files = (self.elbow_txt, self.elbow_json, self.elbow_png, self.label_map_png, self.k_choice,
                 self.similarity_csv, self.similarity_png, self.affinity_cost)
        return [p for p in files if p.exists()]

    def artifacts(self) -> list[Path]:
        """The grouping's files that were written (which ones depends on the method) and the folder's
        plots, as MLflow artifacts of the cell's runs."""
        found = sorted(self.folder.glob("elbow.*")) + sorted(self.folder.glob("*.png"))
        return found + [p for p in (self.k_choice, self.similarity_csv, self.affinity_cost) if p.exists()]

    def saved(self) -> list[Path]:
        """The files `mtlv.cluster` names as saved."""
        files = (self.groups_yaml, self.elbow_png, self.label_map_png, self.similarity_csv, self.similarity_png,
                 self.affinity_cost)
        return [p for p in files if p.exists()]
