"""The "train with these groups" command `mtlv.cluster` prints trains exactly the groups it showed.

Before, it printed `python -m mtlv.train dataset=csv arch=gmtl clustering=kmedoids_label clustering.k=2`:
without dataset.path it failed; with the path added it embedded the labels with the default model, not
the one previewed, and gave other groups."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from helpers import ROOT, TINY, run_cli

from mtlv.config import compose
from mtlv.grouping.partition import TaskGrouping, from_spec
from mtlv.grouping.preview import train_command

ODD = ["Effusion, Malignant", "2023", 'say "hi"', "it's", "${x}", "back\\", "Nodule"]


def test_the_command_keeps_the_users_overrides_and_gives_the_groups_by_name():
    grouping = TaskGrouping(tuple(ODD), ((4, 0, 6), (1,), (2, 3, 5)), "models")
    overrides = ["dataset=csv", "dataset.path=/data/my notes.csv", "model=tiny", "clustering=kmedoids_label",
                 "clustering.k=3", "+clustering.extra=1", "arch=stl", "dataset.source.label_delimiter=|", "seed=7"]
    argv = shlex.split(train_command(grouping, overrides))
    assert argv[1:3] == ["-m", "mtlv.train"]
    assert argv[3:-2] == ["dataset=csv", "dataset.path=/data/my notes.csv", "model=tiny",
                          "dataset.source.label_delimiter=|", "seed=7", "arch=gmtl"]  # stl cannot take groups
    assert argv[-2] == "clustering=given"
    cfg = compose(argv[3:])  # Hydra reads every name back as it was, "2023" as a name, not an index
    assert [list(g) for g in cfg.clustering.groups] == grouping.named_groups()
    assert from_spec(cfg.clustering.groups, ODD, "models") == grouping
    assert (cfg.dataset.path, cfg.model.name, cfg.seed, cfg.arch.name) == ("/data/my notes.csv", "tiny", 7, "gmtl")
    assert "arch=gmhl" in shlex.split(train_command(grouping, ["arch=gmhl"]))


@pytest.mark.slow  # two interpreters, a clustering and a training: ~35 s on an idle 2-core CPU
def test_the_printed_command_trains_the_groups_that_were_shown(tmp_path):
    names = ["Effusion, Malignant", "2023", "spine/degenerative", "it's", "Nodule"]
    rows = [{"text": f"report {i} " + " ".join(names[j].split()[0].lower() for j in range(5) if (i + j) % 3 == 0),
             "labels": "|".join(names[j] for j in range(5) if (i + j) % 3 == 0 or (i * j) % 5 == 1)}
            for i in range(80)]
    path = tmp_path / "notes.csv"
    pd.DataFrame(rows).sample(frac=1, random_state=3).to_csv(path, index=False)
    budget = [a for a in TINY if a != "eval.save_weights=true"] + ["logger=none", "torch_threads=1"]
    shown = run_cli("mtlv.cluster", ["dataset=csv", f"dataset.path={path}", "dataset.source.label_delimiter=|",
                                     "clustering=kmedoids_label", "clustering.k=2", "arch=gmhl", *budget,
                                     "dataset.limit=60"], tmp_path / "cluster").stdout
    lines = re.findall(r"^  group \d+: (.+)$", shown, re.M)  # names joined by ", " (one name has a comma)
    assert len(lines) == 2, shown
    command = re.search(r"^train with these groups: (.+)$", shown, re.M).group(1)
    argv = shlex.split(command)
    assert argv[1:3] == ["-m", "mtlv.train"] and f"dataset.path={path}" in argv and "model=tiny" in argv

    env = dict(os.environ, MTLV_OUTPUT_DIR=str(tmp_path / "train"), HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    job = next((tmp_path / "train" / "runs" / "csv").glob("gmhl-tiny-given-*/model"))
    trained_groups = yaml.safe_load((job / "groups.yaml").read_text())["groups"]
    assert [", ".join(g) for g in trained_groups] == lines
    assert sorted(n for g in trained_groups for n in g) == sorted(names)
    trained = yaml.safe_load((job / "config.yaml").read_text())
    assert trained["model"]["name"] == "tiny" and trained["dataset"]["limit"] == 60
