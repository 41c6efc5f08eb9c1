"""Each option's choices are declared once, by the code that implements them, and the checks read them there:
a grouping method is its class plus its YAML, a clusterer one entry of `ALGORITHMS`, and neither needs an
edit of the option registry (mtlv/options.py) or of an error text to be accepted."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from mtlv import config
from mtlv.checks import check_config, check_options
from mtlv.options import OPTIONS, choices
from mtlv.config import compose
from mtlv.errors import ConfigError
from mtlv.grouping.base import GroupingMethod, grouping_methods
from mtlv.grouping.clusterers import ALGORITHMS, Clusterer

from test_imports import LOWER


class FakeGrouping(GroupingMethod):
    """A grouping method added by a user: learned, one group per pair of labels."""

    learned = True

    def groups(self, corpus, out_dir, cache_dir, train_rows=None):
        return [list(range(i, min(i + 2, corpus.num_labels))) for i in range(0, corpus.num_labels, 2)]


class FakeClusterer(Clusterer):
    def fit(self, X, k):
        return np.arange(len(X)) % int(k), 0.0


def test_a_new_grouping_method_is_one_class_and_one_yaml(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    shutil.copytree(config.CONF_DIR, conf)
    (conf / "clustering" / "pairs.yaml").write_text(
        f"_target_: {__name__}.FakeGrouping\nmethod: pairs\nk: null\ngroups: null\n")
    monkeypatch.setattr(config, "CONF_DIR", conf)  # the package's conf/ with the one new file

    assert "pairs" in grouping_methods(learned=True) and "pairs" not in grouping_methods(learned=False)
    cfg = compose(["arch=gmtl", "clustering=pairs", f"paths.output_dir={tmp_path}/out"], return_hydra=True)
    check_options(cfg)
    check_config(cfg, num_labels=8)
    # the texts that list the methods name it: an architecture that needs groups, and mtlv.cluster
    with pytest.raises(ConfigError, match=r"clustering=none: choose clustering=affinity, cooccurrence, "
                                          r"kmedoids_desc, kmedoids_label, pairs or given"):
        check_config(compose(["arch=gmtl", "clustering=none", f"paths.output_dir={tmp_path}/out"]), num_labels=8)
    from mtlv.grouping.preview import preview_grouping

    with pytest.raises(ConfigError, match=r"needs a learned grouping: clustering=affinity, cooccurrence, "
                                          r"kmedoids_desc, kmedoids_label or pairs \(got clustering=given\)"):
        preview_grouping(compose(["clustering=given", f"paths.output_dir={tmp_path}/out"]))


def test_the_shipped_grouping_methods():
    assert grouping_methods() == ["affinity", "cooccurrence", "kmedoids_desc", "kmedoids_label", "given"]
    assert grouping_methods(learned=False) == ["given"]  # `none` makes no groups: not a choice


def test_a_new_clusterer_is_one_registry_entry(tmp_path, monkeypatch):
    overrides = ["arch=gmhl", "clustering=cooccurrence", "clustering.algorithm=spectral",
                 f"paths.output_dir={tmp_path}"]
    with pytest.raises(ConfigError, match=r"clustering.algorithm='spectral': use one of kmedoids, agglomerative"):
        check_options(compose(overrides))
    monkeypatch.setitem(ALGORITHMS, "spectral", lambda seed, backend, linkage: FakeClusterer())
    cfg = compose(overrides)
    check_options(cfg)
    check_config(cfg, num_labels=8)  # the method makes its clusterer from the registry too


def test_a_new_pooling_is_declared_once(tmp_path, monkeypatch):
    from mtlv.models import options

    overrides = ["model.module.pooling=max", f"paths.output_dir={tmp_path}"]
    with pytest.raises(ConfigError, match="model.module.pooling='max': use one of cls, pooler, mean"):
        check_options(compose(overrides))
    monkeypatch.setattr(options, "POOLINGS", (*options.POOLINGS, "max"))
    check_options(compose(overrides))


def test_the_checks_read_choices_from_lower_floors_without_loading_torch():
    """Every list the checks read lives on a floor below them (mtlv/options.py may not import run/ or
    baselines/), and reading them all loads neither torch nor Lightning: a typo is one error line at once."""
    declared = [o.choices.ref for o in OPTIONS if callable(o.choices) and hasattr(o.choices, "ref")]
    assert len(declared) >= 10 and all(ref.startswith(LOWER) for ref in declared), declared
    code = ("import sys; from mtlv.options import OPTIONS; "
            "[o.choices() for o in OPTIONS if callable(o.choices)]; "
            "print(sorted(m for m in ('torch', 'lightning', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_code_above_the_checks_reads_its_choices_from_them():
    from mtlv.baselines.classical import CLASSIFIERS, FEATURES
    from mtlv.run.progress import STYLES

    assert STYLES == choices("callbacks.progress_bar.style") == ("auto", "bar", "lines")
    assert (FEATURES, CLASSIFIERS) == (("tfidf", "bow"), ("logreg", "random_forest"))
