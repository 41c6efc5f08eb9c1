from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from mtlv.evaluation.evaluate import evaluate
from mtlv.evaluation.metrics import constant_labels_note, multilabel_metrics
from mtlv.evaluation.predictions import Predictions
from mtlv.evaluation.thresholds import select_threshold

NAMES = ["a", "b", "c", "d"]


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    targets = (rng.random((200, 4)) < [0.1, 0.3, 0.5, 0.2]).astype(int)
    probs = np.clip(targets * 0.35 + rng.random((200, 4)) * 0.65, 0, 1)
    return probs, targets


def test_metrics_equal_scikit_learn(arrays):
    probs, targets = arrays
    for t in (0.3, 0.5, 0.7):
        preds = (probs >= t).astype(int)
        ours = multilabel_metrics(probs, targets, t, NAMES, groups=[[0, 1], [2, 3]])
        assert ours["f1_macro"] == pytest.approx(f1_score(targets, preds, average="macro"), abs=1e-12)
        assert ours["f1_micro"] == pytest.approx(f1_score(targets, preds, average="micro"), abs=1e-12)
        assert ours["subset_accuracy"] == pytest.approx(accuracy_score(targets, preds), abs=1e-12)
        per_label = f1_score(targets, preds, average=None)
        for j, name in enumerate(NAMES):
            assert ours["per_label"][name]["f1"] == pytest.approx(per_label[j], abs=1e-12)
            assert ours["per_label"][name]["precision"] == pytest.approx(
                precision_score(targets[:, j], preds[:, j], zero_division=0), abs=1e-12)
            assert ours["per_label"][name]["recall"] == pytest.approx(recall_score(targets[:, j], preds[:, j]), abs=1e-12)
        assert ours["per_group"][1]["f1_macro"] == pytest.approx(f1_score(targets[:, 2:], preds[:, 2:], average="macro"))


def test_label_without_positives_is_undefined_not_zero(arrays):
    probs, targets = arrays
    targets = targets.copy()
    targets[:, 0] = 0
    out = multilabel_metrics(probs, targets, 0.5, NAMES)
    preds = (probs >= 0.5).astype(int)
    assert np.isnan(out["per_label"]["a"]["f1"])
    assert out["n_undefined"] == 1
    # F1-macro averages over the labels with support only
    assert out["f1_macro"] == pytest.approx(f1_score(targets, preds, average="macro", labels=[1, 2, 3]))
    assert out["f1_macro"] != pytest.approx(f1_score(targets, preds, average="macro", zero_division=0))


def test_threshold_is_chosen_on_validation_not_test():
    # Validation positives score ~0.3, test positives ~0.8: the best validation threshold (0.25)
    # (0.25 or 0.3; ties go to the one nearer 0.5) differs from the best on test (0.35..0.8).
    val_t = np.array([[1], [1], [0], [0]] * 10)
    val_p = np.where(val_t == 1, 0.3, 0.2).astype(float)
    test_t = np.array([[1], [0], [0], [0]] * 10)
    test_p = np.where(test_t == 1, 0.8, 0.3).astype(float)
    val = Predictions([str(i) for i in range(40)], val_p, val_t, ["x"])
    test = Predictions([f"t{i}" for i in range(40)], test_p, test_t, ["x"])
    report = evaluate(val, test)
    assert report["threshold"] == pytest.approx(0.3)
    assert report["val"]["f1_macro"] == pytest.approx(1.0)
    # on test, 0.3 predicts every negative at 0.3 positive -> precision 1/4
    assert report["test"]["f1_macro"] == pytest.approx(2 * 0.25 / 1.25)
    assert select_threshold(test_p, test_t, ["x"]) != pytest.approx(0.3)
    assert report["test_at_0.5"]["f1_macro"] == pytest.approx(1.0)


def test_per_label_thresholds(arrays):
    probs, targets = arrays
    thresholds = select_threshold(probs, targets, NAMES, per_label=True)
    assert thresholds.shape == (4,)
    for j in range(4):
        best = max(f1_score(targets[:, j], probs[:, j] >= t) for t in np.arange(0.05, 0.951, 0.05))
        assert f1_score(targets[:, j], probs[:, j] >= thresholds[j]) == pytest.approx(best)


def test_labels_on_every_or_no_test_document_are_warned_about_under_the_label_table(tmp_path, caplog):
    """A label on every document scores F1 1.000 by predicting it everywhere; one on none has no F1. A job (here
    the classical baseline, which shares the label table) names both under its label table, saying how each
    enters F1-macro; the numbers show why: the first's F1 is 1.000, the second's undefined and not averaged."""
    import logging

    import pandas as pd

    from mtlv.baselines.job import run_baseline
    from mtlv.config import compose
    from mtlv.data.splits import constant_labels
    from mtlv.io import read_json

    rng = np.random.default_rng(0)
    n = 60
    fever = (rng.random(n) < 0.5).astype(int)
    texts = [f"patient {'febrile hot' if f else 'afebrile cool'} note {i}" for i, f in enumerate(fever)]
    path = tmp_path / "always.csv"
    pd.DataFrame({"text": texts, "fever": fever, "seen": 1, "never": 0}).to_csv(path, index=False)
    cfg = compose(["dataset=csv", f"dataset.path={path}", "dataset.source.label_columns=[fever,seen,never]",
                   f"paths.output_dir={tmp_path}", "logger=none"], config_name="baseline")
    with caplog.at_level(logging.WARNING):
        result = run_baseline(cfg)
    counts = pd.read_csv(Path(result["folder"]) / "label_counts.csv", index_col=0)
    assert constant_labels(counts) == (["seen"], ["never"])
    warning = [r.getMessage() for r in caplog.records if "on every test document" in r.getMessage()]
    assert warning == [constant_labels_note(["seen"], ["never"])]
    assert "seen. Each one's F1 is 1.000" in warning[0] and "never. Each one's F1 is undefined" in warning[0]
    test = read_json(Path(result["folder"]) / "metrics.json", numbers=True)["test"]
    assert test["per_label"]["seen"]["f1"] == 1.0 and np.isnan(test["per_label"]["never"]["f1"])
    assert test["n_undefined"] == 1
    assert test["f1_macro"] == pytest.approx((test["per_label"]["fever"]["f1"] + 1.0) / 2)


def test_constant_labels_note_names_what_there_is():
    assert constant_labels_note([], []) is None
    assert constant_labels_note(["a", "b"], []).startswith("Label(s) on every test document: a, b. ")
    only_never = constant_labels_note([], ["c"], part="validation")
    assert only_never.startswith("Label(s) on no validation document: c. ") and "1.000" not in only_never
