"""A learned grouping is computed once per (clustering options, data, fold) and copied into every other
cell that needs it (mtlv/run/cell.py `cached_groups`): GMHL and GMTL cells of one clustering share it,
label-embedding groupings are shared across folds, and any other option computes a new one."""
from __future__ import annotations

from helpers import TINY

from mtlv.config import compose
from mtlv.grouping.methods import CooccurrenceGrouping, EmbeddingGrouping
from mtlv.grouping.partition import TaskGrouping
from mtlv.run.cell import cell_grouping
from mtlv.run.spec import JobSpec
from mtlv.data.load import load_corpus
from mtlv.layout import GroupingFiles


def grouping(tmp_path, *overrides):
    cfg = compose([*TINY, "logger=none", f"paths.output_dir={tmp_path}", "split.folds=2", *overrides])
    spec = JobSpec.of(cfg)
    return cell_grouping(spec, load_corpus(cfg)), spec.cell.folder


def counting(monkeypatch, cls):
    calls = []
    original = cls.task_features

    def task_features(self, *args, **kwargs):
        calls.append(self.k)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "task_features", task_features)
    return calls


def test_gmhl_and_gmtl_share_a_grouping_and_its_files(tmp_path, monkeypatch):
    calls = counting(monkeypatch, CooccurrenceGrouping)
    common = ["clustering=cooccurrence", "clustering.k=3", "clustering.algorithm=agglomerative", "split.fold=1"]
    heads, heads_dir = grouping(tmp_path, "arch=gmhl", *common)
    models, models_dir = grouping(tmp_path, "arch=gmtl", *common)
    assert len(calls) == 1 and heads_dir != models_dir
    assert heads.groups == models.groups and (heads.placement, models.placement) == ("heads", "models")
    assert TaskGrouping.load(models_dir / "groups.yaml").groups == heads.groups
    names = sorted(p.name for p in GroupingFiles(heads_dir).written())
    assert names == sorted(p.name for p in GroupingFiles(models_dir).written())
    assert {"elbow.png", "k_choice.json", "task_similarity.csv"} <= set(names)
    assert (heads_dir / "task_similarity.csv").read_bytes() == (models_dir / "task_similarity.csv").read_bytes()
    # another fold (other training documents) or another k computes its own
    grouping(tmp_path, "arch=gmtl", *common[:-1], "split.fold=0")
    grouping(tmp_path, "arch=gmtl", *common[1:], "clustering=cooccurrence", "clustering.k=2")
    assert calls == [3, 3, 2]


def test_label_embedding_groupings_are_shared_across_folds(tmp_path, monkeypatch):
    calls = counting(monkeypatch, EmbeddingGrouping)
    first, _ = grouping(tmp_path, "arch=gmtl", "clustering=kmedoids_label", "clustering.k=2", "split.fold=0")
    second, _ = grouping(tmp_path, "arch=gmhl", "clustering=kmedoids_label", "clustering.k=2", "split.fold=1")
    assert len(calls) == 1 and first.groups == second.groups
