"""`python -m mtlv.cluster`: a learned grouping computed alone (no training), its groups, elbow table and
choice of k printed, its plots saved, and the `mtlv.train` command that trains with these groups."""
from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

from omegaconf import DictConfig

from mtlv.errors import ConfigError


def preview_grouping(cfg: DictConfig) -> None:
    from mtlv.checks import check_options, checked_by_preflight
    from mtlv.grouping.partition import TaskGrouping
    from mtlv.io import read_json
    from mtlv.grouping.base import choices_text, method_from_config
    from mtlv.data.load import load_corpus, train_rows
    from mtlv.grouping.files import GroupingFiles

    method = method_from_config(cfg.clustering)
    if not method.learned:
        raise ConfigError(f"mtlv.cluster needs a learned grouping: {choices_text(learned=True)} "
                          f"(got clustering={cfg.clustering.method})")
    if not checked_by_preflight(cfg):  # `python -m mtlv.cluster` checked them before Hydra made its folder
        check_options(cfg)
    corpus = load_corpus(cfg)
    method.check(corpus.num_labels)
    out = Path(cfg.paths.output_dir) / "clustering" / f"{corpus.name}-{method.label()}"
    files = GroupingFiles(out)
    rows = train_rows(corpus, cfg.paths.cache_dir, cfg.seed, cfg.split) if method.uses_documents else None
    groups = method.groups(corpus, out, cfg.paths.cache_dir, rows)
    grouping = TaskGrouping(tuple(corpus.label_names), tuple(tuple(g) for g in groups), "models")
    grouping.save(files.groups_yaml)
    choice = read_json(files.k_choice)
    print(f"\n{corpus.name}: {corpus.num_labels} labels in {len(groups)} groups "
          f"({method.algorithm} on {method.describe()})")
    for i, names in enumerate(grouping.named_groups()):
        print(f"  group {i}: {', '.join(names)}")
    print(f"\nk = {choice['k']}: {choice['why']}")
    print("\nelbow (sum of distances to medoids):\n" + files.elbow_txt.read_text())
    print("saved: " + ", ".join(str(p) for p in files.saved()))
    print(f"train with these groups: {train_command(grouping, user_overrides())}")


def user_overrides() -> list[str]:
    """The command line's overrides (the data, its path, the model, seed, split, ...), as typed."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def train_command(grouping, overrides: list[str]) -> str:
    """The `mtlv.train` command that trains exactly these groups on the same data: the user's overrides
    but the clustering ones, and the groups given by label name (clustering=given), so nothing is computed
    again (an embedding with another encoder, another fold's co-occurrences) and the groups cannot differ.
    Shell-quoted; the interpreter running now, unless `python` on the PATH is that one."""
    def key(override: str) -> str:
        return re.split(r"[=@]", override.lstrip("~+"), maxsplit=1)[0]

    kept = [o for o in overrides if key(o) != "clustering" and not key(o).startswith("clustering.")]
    archs = [o for o in kept if key(o) == "arch"]
    if not archs or archs[-1].split("=", 1)[-1] not in ("gmtl", "gmhl"):  # groups need a grouped architecture
        kept = [o for o in kept if key(o) != "arch"] + ["arch=gmtl"]
    groups = "[" + ",".join("[" + ",".join(map(_hydra_string, names)) + "]" for names in grouping.named_groups()) + "]"
    python = "python" if shutil.which("python") == sys.executable else sys.executable
    return shlex.join([python, "-m", "mtlv.train", *kept, "clustering=given", f"clustering.groups={groups}"])


def _hydra_string(name: str) -> str:
    """A label name as a quoted string of Hydra's override grammar: always read as a name (also `2023`), with
    quotes, trailing backslashes and `${` escaped."""
    name = name.replace("${", "\\${")
    name = re.sub(r'(\\*)("|$)', lambda m: m.group(1) * 2 + ("\\" + m.group(2) if m.group(2) else ""), name)
    return f'"{name}"'

