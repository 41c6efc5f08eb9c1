"""Joining group jobs' prediction files by document id, and aggregating a cell from them.

Every real job writes its rows sorted by document index, so a join that stacked the files' columns
by position would pass any test built from real jobs. Here each group's files list the documents in
a different (shuffled) order, the groups are non-contiguous slices of the label order, and the
expected matrix is built by hand from per-document dicts, never by `join`.
"""
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from mtlv.evaluation.predictions import Predictions, join
from mtlv.evaluation.thresholds import DEFAULT_GRID

LABELS = ["b", "a", "c", "e", "d"]           # the cell's label order (not alphabetical)
GROUPS = ((0, 3), (2,), (1, 4))               # b+e, c, a+d: non-contiguous in LABELS
# ids whose string order differs from their numeric order ("10" < "9"), so a sort cannot line them up either
IDS = [str(i) for i in range(3, 63)]


def documents(seed: int) -> dict[str, dict[str, tuple[int, float]]]:
    """{id: {label: (true, prob)}}, rounded to the 6 decimals the files keep.

    Each file carries its own `true:` columns, so per-label and macro/micro F1 survive rows misaligned
    across groups; only row-wise metrics (subset accuracy) and the saved matrix show it. So a document
    is easy (every label on the right side of 0.5) or hard (every label on the wrong side), as real
    documents are: aligned rows give subset accuracy = the share of easy documents, misaligned ones
    about its cube."""
    rng = np.random.default_rng(seed)
    docs = {}
    for doc in IDS:
        hard, row = rng.random() < 0.3, {}
        for name, rate in zip(LABELS, (0.5, 0.3, 0.4, 0.35, 0.45)):
            y = int(rng.random() < rate)
            side = 1 - y if hard else y
            row[name] = (y, round(float(0.55 * side + 0.45 * rng.random()), 6))
        docs[doc] = row
    return docs


def group_file(docs: dict, names: list[str], order: list[str]) -> Predictions:
    """One group job's predictions: its labels' columns, its documents in `order`."""
    return Predictions(order, np.array([[docs[d][n][1] for n in names] for d in order]),
                       np.array([[docs[d][n][0] for n in names] for d in order]), names)


def expected(docs: dict, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The full (targets, probs) matrix for `ids` in LABELS order, straight from the dicts."""
    return (np.array([[docs[d][n][0] for n in LABELS] for d in ids]),
            np.array([[docs[d][n][1] for n in LABELS] for d in ids]))


def shuffled_orders(seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    orders = [[IDS[i] for i in rng.permutation(len(IDS))] for _ in GROUPS]
    assert all(a != b for i, a in enumerate(orders) for b in orders[i + 1:])  # really different orders
    return orders


def test_join_matches_documents_by_id_not_by_row_position(tmp_path):
    docs = documents(0)
    parts = []
    for g, (group, order) in enumerate(zip(GROUPS, shuffled_orders(1))):
        names = [LABELS[j] for j in group]
        path = group_file(docs, names, order).save(tmp_path / f"g{g}.csv")
        parts.append(Predictions.load(path))  # through the file, as aggregation reads it
    joined = join(parts, LABELS)
    assert joined.label_names == LABELS
    assert sorted(joined.ids) == sorted(IDS) and len(joined.ids) == len(IDS)
    targets, probs = expected(docs, joined.ids)
    np.testing.assert_array_equal(joined.targets, targets)
    np.testing.assert_allclose(joined.probs, probs, rtol=0, atol=1e-9)


def test_join_refuses_files_that_cover_different_documents():
    from mtlv.errors import DataError

    docs = documents(0)
    a = group_file(docs, ["b", "e"], IDS)
    b = group_file(docs, ["c"], IDS[:-1])  # one document short
    c = group_file(docs, ["a", "d"], IDS)
    with pytest.raises(DataError, match="different documents"):
        join([a, b, c], LABELS)


# ------------------------------------------------------------------ aggregation of a hand-built cell
def build_cell(folder, threshold_mode: str) -> dict:
    """A cell folder as a sweep leaves it (groups.yaml, group-NN/ with result.json, config.yaml and
    prediction files), each group's val and test files in their own shuffled row order."""
    from mtlv.grouping.partition import TaskGrouping
    from mtlv.io import write_json, write_text

    TaskGrouping(tuple(LABELS), GROUPS, "models").save(folder / "groups.yaml")
    parts = {"val": documents(10), "test": documents(11)}
    orders = {"val": shuffled_orders(12), "test": shuffled_orders(13)}
    for g, group in enumerate(GROUPS):
        job = folder / f"group-{g:02d}"
        # elapsed_s (the model's training time) is not end - start (which includes loading, evaluating)
        write_json(job / "result.json", {"run_name": "gmtl-hand", "start": 100.0 + g, "end": 110.0 + 2 * g,
                                         "elapsed_s": 5.0 + g})
        write_text(job / "config.yaml", f"eval:\n  threshold: {threshold_mode}\n")
        for part, docs in parts.items():
            group_file(docs, [LABELS[j] for j in group], orders[part][g]).save(job / f"predictions_{part}.csv")
    return parts


def best_on_validation(targets: np.ndarray, probs: np.ndarray, per_label: bool) -> float | np.ndarray:
    """The best validation F1-macro over the threshold grid (one threshold, or each label's own best
    F1), by scikit-learn: what the chosen threshold must reach."""
    if not per_label:
        return max(f1_score(targets, (probs >= t).astype(int), average="macro", zero_division=0) for t in DEFAULT_GRID)
    return np.array([max(f1_score(targets[:, j], (probs[:, j] >= t).astype(int), zero_division=0) for t in DEFAULT_GRID)
                     for j in range(len(LABELS))])


@pytest.mark.parametrize("threshold_mode", ["global", "per_label"])
def test_aggregate_cell_scores_the_documents_it_joined_by_id(tmp_path, threshold_mode):
    from mtlv.run.aggregation import aggregate_cell

    parts = build_cell(tmp_path, threshold_mode)
    summary = aggregate_cell(tmp_path)
    saved_test = Predictions.load(tmp_path / "predictions_test.csv")
    assert saved_test.label_names == LABELS and sorted(saved_test.ids) == sorted(IDS)
    y_val, p_val = expected(parts["val"], IDS)
    y_test, p_test = expected(parts["test"], saved_test.ids)
    np.testing.assert_array_equal(saved_test.targets, y_test)
    np.testing.assert_allclose(saved_test.probs, p_test, rtol=0, atol=1e-9)

    # The threshold is one that maximises validation F1 on the hand-built matrix (ties are the code's choice).
    threshold = np.asarray(summary["threshold"], dtype=float)
    if threshold_mode == "global":
        assert threshold.shape == ()
        reached = f1_score(y_val, (p_val >= threshold).astype(int), average="macro", zero_division=0)
        assert reached == pytest.approx(best_on_validation(y_val, p_val, False), abs=1e-12)
    else:
        assert threshold.shape == (len(LABELS),)
        reached = [f1_score(y_val[:, j], (p_val[:, j] >= threshold[j]).astype(int), zero_division=0)
                   for j in range(len(LABELS))]
        np.testing.assert_allclose(reached, best_on_validation(y_val, p_val, True), rtol=0, atol=1e-12)

    # Test metrics at that threshold and at 0.5, by scikit-learn on the hand-built test matrix.
    y_test, p_test = expected(parts["test"], IDS)
    for key, t in (("test", threshold), ("test_at_0.5", 0.5)):
        preds = (p_test >= t).astype(int)
        assert summary[key]["f1_macro"] == pytest.approx(f1_score(y_test, preds, average="macro"), abs=1e-12)
        assert summary[key]["f1_micro"] == pytest.approx(f1_score(y_test, preds, average="micro"), abs=1e-12)
        assert summary[key]["subset_accuracy"] == pytest.approx(accuracy_score(y_test, preds), abs=1e-12)
    # The group jobs' timing: summed exactly, elapsed from the first start to the last end.
    assert summary["sum_job_s"] == pytest.approx(5.0 + 6.0 + 7.0)
    assert summary["elapsed_s"] == pytest.approx(114.0 - 100.0)
    assert summary["num_jobs"] == 3
