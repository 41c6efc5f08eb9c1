"""A TaskGrouping is a partition of the dataset's labels into groups plus a placement:
`heads` (one shared encoder, one head per group: MTL, GMHL) or `models` (one model per group,
each trained as its own job: STL, GMTL). All four architectures are this one idea."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mtlv.errors import ConfigError
from mtlv.io import read_yaml, write_yaml

PLACEMENTS = ("heads", "models")


@dataclass(frozen=True)
class TaskGrouping:
    label_names: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]
    placement: str = "heads"

    def __post_init__(self) -> None:
        if self.placement not in PLACEMENTS:
            raise ConfigError(f"arch.placement={self.placement!r}: use one of {PLACEMENTS}")
        seen = [j for g in self.groups for j in g]
        if sorted(seen) != list(range(len(self.label_names))) or any(len(g) == 0 for g in self.groups):
            raise ConfigError(f"groups {self.named_groups()} are not a partition of the labels")

    @property
    def num_groups(self) -> int:
        return len(self.groups)

    def named_groups(self) -> list[list[str]]:
        return [[self.label_names[j] for j in g] for g in self.groups]

    def job_labels(self, group_index: int | None) -> tuple[list[int], list[list[int]]]:
        """(dataset label columns this job trains, its heads as indices into those columns)."""
        if self.placement == "heads":
            cols = [j for g in self.groups for j in g]
            pos = {j: i for i, j in enumerate(cols)}
            return cols, [[pos[j] for j in g] for g in self.groups]
        if group_index is None or not 0 <= int(group_index) < self.num_groups:
            raise ConfigError(
                f"group_index={group_index}: this architecture trains one model per group "
                f"({self.num_groups} groups), so a job needs group_index in 0..{self.num_groups - 1}. "
                "Run it as a sweep (it is one by default; with hydra.mode=RUN pass group_index=<i>)."
            )
        cols = list(self.groups[int(group_index)])
        return cols, [list(range(len(cols)))]

    def to_dict(self) -> dict:
        return {"placement": self.placement, "label_names": list(self.label_names),
                "groups": self.named_groups()}

    def save(self, path: str | Path) -> Path:
        return write_yaml(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "TaskGrouping":
        data = read_yaml(path)
        return from_spec(data["groups"], data["label_names"], data["placement"])


def _quote_names(names: Sequence[str]) -> str:
    shown = ",".join(f'"{n}"' for n in names[:2])
    return (f"to mean a label by its name, quote it: on a shell command line 'clustering.groups=[[{shown}],[...]]' "
            "(single quotes around the whole override for the shell, double quotes around each name for Hydra), "
            f"in a YAML file [[{shown.replace(',', ', ')}], ...]")


def resolve_groups(spec: Sequence[Sequence[str | int]], label_names: Sequence[str],
                   given: bool = False) -> list[list[int]]:
    """Turn groups given by label name or index into index lists; every label exactly once. A number is an
    index; in groups a user `given` (Hydra reads an unquoted 2023 as a number), a number that is also
    another label's name is an error that says how to quote names."""
    index = {name: j for j, name in enumerate(label_names)}
    lower = {name.lower(): j for j, name in enumerate(label_names)}
    numeric = [name for name in label_names if name.isdigit()] if given else []
    groups, seen = [], {}
    for gi, group in enumerate(spec or []):
        resolved = []
        for item in group:
            if isinstance(item, int) or (isinstance(item, str) and item.isdigit() and item not in index):
                j = int(item)
                named = index.get(str(j)) if given else None
                if named is not None and named != j:
                    what = f"label index {j} ({label_names[j]!r})" if 0 <= j < len(label_names) else \
                        f"label index {j}, out of range 0..{len(label_names) - 1}"
                    raise ConfigError(f"clustering.groups: {j} in group {gi} reads as {what}, but a label is named "
                                      f"'{j}'; {_quote_names([str(j), *[n for n in numeric if n != str(j)]])}")
                if not 0 <= j < len(label_names):
                    hint = f"; label names that are numbers must be quoted ({_quote_names(numeric)})" if numeric else ""
                    raise ConfigError(f"clustering.groups: label index {j} in group {gi} is out of range "
                                      f"0..{len(label_names) - 1}{hint}")
            elif item in index or str(item).lower() in lower:
                j = index.get(item, lower.get(str(item).lower()))
            else:
                raise ConfigError(f"clustering.groups: unknown label {item!r} in group {gi}; "
                                  f"labels are {list(label_names)}")
            if j in seen:
                raise ConfigError(f"clustering.groups: label {label_names[j]!r} appears in group {seen[j]} and "
                                  f"group {gi}; every label must be in exactly one group")
            seen[j] = gi
            resolved.append(j)
        if not resolved:
            raise ConfigError(f"clustering.groups: group {gi} is empty; every group needs at least one label")
        groups.append(resolved)
    missing = [label_names[j] for j in range(len(label_names)) if j not in seen]
    if missing:
        raise ConfigError(f"clustering.groups: labels {missing} are in no group; every label must be in "
                          f"exactly one group")
    return groups


def from_spec(spec, label_names, placement: str) -> TaskGrouping:
    return TaskGrouping(tuple(label_names), tuple(tuple(g) for g in resolve_groups(spec, label_names)), placement)


def all_in_one(label_names: Sequence[str], placement: str = "heads") -> TaskGrouping:
    return TaskGrouping(tuple(label_names), (tuple(range(len(label_names))),), placement)


def one_per_label(label_names: Sequence[str], placement: str = "models") -> TaskGrouping:
    return TaskGrouping(tuple(label_names), tuple((j,) for j in range(len(label_names))), placement)
