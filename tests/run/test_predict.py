"""`mtlv.predict` round trip on MTL and GMHL jobs trained for 3 epochs whose best checkpoint is the first
epoch's (tests/early_best.py), so best != last: predict must give the saved test probabilities of the
BEST weights, from a file and from stdin, and apply each label's own threshold (eval.threshold=per_label).
(The GMTL round trip after 1 epoch is in test_sweep.py.)"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import BEST_AT_FIRST_EPOCH, TESTS_ON_PATH, TINY, run_cli

from mtlv.evaluation.predictions import Predictions
from mtlv.io import read_json

pytestmark = pytest.mark.slow  # two 3-epoch jobs and four predict processes (~3 min on 2 shared cores)

EPOCHS = 3
CASES = {
    "mtl": ["arch=mtl", "eval.threshold=global"],
    # non-contiguous groups: the job's label order (0,3,5,1,6,2,4,7) is not the dataset's
    "gmhl": ["arch=gmhl", "clustering=given", "clustering.groups=[[0,3,5],[1,6],[2,4,7]]", "eval.threshold=per_label"],
}
ATOL = 2e-4  # same weights, same texts; batches padded differently (predict batches 32, the job 64)


@pytest.fixture(scope="module")
def jobs(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    out = tmp_path_factory.mktemp("predict")
    folders = {}
    for name, args in CASES.items():
        run_cli("mtlv.train", [*TINY, *args, f"trainer.max_epochs={EPOCHS}", "torch_threads=1", *BEST_AT_FIRST_EPOCH],
                out, env=TESTS_ON_PATH, timeout=1800)  # only a hang: minutes on a shared machine
        (folder,) = (out / "runs" / "demo").glob(f"{name}-*/model")
        folders[name] = (out, folder)
    return folders


def texts_of(ids: list[str]) -> list[str]:
    from mtlv.data.sources.demo import load_demo

    corpus = load_demo()
    by_id = dict(zip(corpus.ids, corpus.texts))
    return [by_id[i] for i in ids]


def probs_with(export: Path, state: dict, texts: list[str]) -> np.ndarray:
    """The export's model with other weights (a checkpoint's), applied to `texts`."""
    from mtlv.models.export import ExportedModel

    model = ExportedModel(export)
    model.load_state_dict({k: v for k, v in state.items() if k.startswith(("encoder.", "heads."))}, strict=True)
    return model.predict_proba(texts).numpy()


def thresholds_by_label(folder: Path) -> dict[str, float]:
    """The thresholds the job saved (metrics.json), per label: a list follows the job's label order,
    which is the order of its saved prediction columns."""
    saved = read_json(folder / "metrics.json")["threshold"]
    names = Predictions.load(folder / "predictions_val.csv").label_names
    if isinstance(saved, list):
        assert len(saved) == len(names)
        return dict(zip(names, map(float, saved)))
    return {n: float(saved) for n in names}


@pytest.mark.parametrize("name", CASES)
def test_predict_gives_the_best_checkpoints_saved_test_probabilities(jobs, name, tmp_path):
    out, folder = jobs[name]
    best = torch.load(folder / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    last = torch.load(folder / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (best["epoch"], last["epoch"]) == (0, EPOCHS - 1)  # best != last

    test = Predictions.load(folder / "predictions_test.csv")
    order = np.random.default_rng(0).permutation(len(test.ids))  # rows in another order than the saved file
    ids = [test.ids[i] for i in order]
    texts = texts_of(ids)
    pd.DataFrame({"doc": ids, "text": texts}).to_csv(tmp_path / "new.csv", index=False)
    run_id = read_json(folder / "result.json")["run_id"]
    run_cli("mtlv.predict", [f"run={run_id}", f"input={tmp_path / 'new.csv'}", "id_column=doc",
                             f"output={tmp_path / 'out.jsonl'}"], out)
    got = pd.read_json(tmp_path / "out.jsonl", lines=True, dtype={"id": str})
    assert got["id"].tolist() == ids
    probs = got[[f"prob:{n}" for n in test.label_names]].to_numpy()
    np.testing.assert_allclose(probs, test.probs[order], rtol=0, atol=ATOL)

    # The last epoch's weights give other probabilities, by far more than the tolerance above.
    export = folder / "export"
    from_last = probs_with(export, last["state_dict"], texts)
    from_best = probs_with(export, best["state_dict"], texts)
    np.testing.assert_allclose(from_best, probs, rtol=0, atol=ATOL)
    assert np.abs(from_last - probs).max() > 50 * ATOL

    # stdin: one text per line; ids are line numbers, output CSV on stdout.
    proc = run_cli("mtlv.predict", [f"run={folder}", "input=-"], out, stdin="\n".join(texts) + "\n")
    piped = pd.read_csv(io.StringIO(proc.stdout), dtype={"id": str})
    assert piped["id"].tolist() == [str(i) for i in range(len(texts))]
    np.testing.assert_allclose(piped[[f"prob:{n}" for n in test.label_names]].to_numpy(), test.probs[order],
                               rtol=0, atol=ATOL)
    assert piped["labels"].fillna("").tolist() == got["labels"].fillna("").tolist()


@pytest.mark.parametrize("name", CASES)
def test_predicted_labels_apply_each_labels_saved_threshold(jobs, name, tmp_path):
    out, folder = jobs[name]
    thresholds = thresholds_by_label(folder)
    if CASES[name][-1] == "eval.threshold=per_label":
        assert len(set(thresholds.values())) > 1  # else one global threshold would pass as well
    test = Predictions.load(folder / "predictions_test.csv")
    texts = texts_of(test.ids)
    (tmp_path / "new.txt").write_text("\n".join(texts) + "\n")
    run_cli("mtlv.predict", [f"run={folder}", f"input={tmp_path / 'new.txt'}", f"output={tmp_path / 'out.csv'}"], out)
    got = pd.read_csv(tmp_path / "out.csv", dtype={"id": str})
    names = [c[len("prob:"):] for c in got.columns if c.startswith("prob:")]
    assert sorted(names) == sorted(thresholds)
    expected = [";".join(n for n in names if row[f"prob:{n}"] >= thresholds[n]) for _, row in got.iterrows()]
    assert got["labels"].fillna("").tolist() == expected
    # ... and those labels differ from what any one threshold would give (per_label only)
    if len(set(thresholds.values())) > 1:
        for t in set(thresholds.values()):
            one = [";".join(n for n in names if row[f"prob:{n}"] >= t) for _, row in got.iterrows()]
            assert one != expected, f"threshold {t} for every label gives the same labels"
