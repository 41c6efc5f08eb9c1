"""Label names in the report are the user's names, shown as written: a name MLflow rejects as a metric key is
mapped back from the run's label_keys.json (it showed twice: by name with no numbers, and as its key with the
numbers), and a name that is also Markdown (`tick`, *star*, <http://...>, ![image](...)) is text in report.md
and report.html, never code, emphasis, a link or an image. The store is written by the functions real jobs log
with (record.log_result: per-label metric keys, label_keys.json, label_counts.csv)."""
from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest

from mtlv import tracking
from mtlv.config import compose
from mtlv.evaluation.evaluate import evaluate
from mtlv.evaluation.predictions import Predictions
from mtlv.run import record
from mtlv.layout import JobLayout

HOSTILE = ["Cardiomegaly?", "Effusion, Malignant", "`tick` *star*", "<http://evil.example/x.png>",
           "![img](http://evil.example/i.png)", "[link](http://evil.example/)", "_under_ ~~gone~~ &amp;",
           "$\\undefinedmacro$ costs $5 or $6"]  # math to matplotlib: the figures draw it as text
LABELS = [*HOSTILE, "Nodule"]
FOLDS = (0, 1)
ALWAYS, NEVER = "Nodule", "`tick` *star*"


def predictions(rng, n: int, part: str) -> Predictions:
    targets = (rng.random((n, len(LABELS))) < 0.4).astype(int)
    targets[0] = 1                                               # every label has a positive in every part
    probs = np.clip(0.6 * targets + rng.normal(0.2, 0.2, targets.shape), 0, 1)
    return Predictions([f"{part}{i}" for i in range(n)], probs, targets, list(LABELS))


@pytest.fixture(scope="module")
def report(tmp_path_factory, empty_db):
    import shutil

    folder = tmp_path_factory.mktemp("labels")
    shutil.copy(empty_db, folder / "mlflow.db")
    uri = f"sqlite:///{folder}/mlflow.db"
    exp = tracking.experiment_id(uri, "notes", str(folder / "mlartifacts"))
    rng = np.random.default_rng(0)
    expected = {}
    for arch in ("mtl", "gmtl"):
        for fold in FOLDS:
            job = JobLayout(folder / f"{arch}{fold}")
            job.mkdir()
            counts = pd.DataFrame({"total": [50] * len(LABELS), "train": [30] * len(LABELS),
                                   "val": [8] * len(LABELS), "test": [12] * len(LABELS)}, index=LABELS)
            counts.loc["(documents)"] = [100, 60, 16, 24]
            counts.loc[ALWAYS, "test"], counts.loc[NEVER, "test"] = 24, 0  # on every / no test document
            counts.to_csv(job.label_counts)
            result = evaluate(predictions(rng, 16, "v"), predictions(rng, 24, "t"), None, "global")
            expected[(arch, fold)] = {n: result["test"]["per_label"][n]["f1"] for n in LABELS}
            parent = arch == "gmtl"
            run_id = tracking.create_run(uri, exp, f"{arch}-minilm-fold{fold}", {
                "dataset": "notes", "arch": arch, "cell": f"{arch}-{fold}", "mtlv.role": "parent" if parent else "job",
                "mtlv.job_dir": str(job.folder)})
            params = {"arch.name": arch, "model.name": "minilm", "split.folds": 2, "split.fold": fold, "seed": 42,
                      "clustering.method": "kmedoids" if parent else "none"}
            if parent:
                params.update({"clustering.feature": "name", "clustering.k": 2, "num_groups": 2})
            record.log_result(uri, run_id, params=params, metrics=record.result_metrics(result, elapsed_s=5.0),
                              artifacts=[job.label_counts], label_names=LABELS, files=job, end=True)
    from mtlv.report.page import build_report

    page = build_report(compose([f"tracking_uri={uri}", f"out={folder / 'report'}"], config_name="report"))
    return page, expected


def test_sanitised_label_keys_are_mapped_back_everywhere(report):
    page, expected = report
    assert any(tracking.label_key(n) != n for n in LABELS)        # the store holds changed keys (the case tested)
    table = pd.read_csv(page.parent / "notes" / "table4_per_label.csv", keep_default_na=False)
    assert sorted(table.label) == sorted(LABELS)                   # each label once, by its own name
    for arch in ("mtl", "gmtl"):
        means = table.set_index("label")[f"{arch}_minilm_mean"]
        for name in LABELS:
            assert means[name] == pytest.approx(np.mean([expected[(arch, f)][name] for f in FOLDS]), abs=1e-6), name
    gains = page.read_text(encoding="utf-8")
    assert not re.search(r"-[0-9a-f]{8}\b", gains.split("### Table 4")[1].split("###")[0])


def test_label_names_are_text_in_report_md_and_html(report):
    page, _ = report
    text = page.with_suffix(".html").read_text(encoding="utf-8")
    table4 = text.split("Table 4 (notes)")[1].split("</table>")[0]
    for name in LABELS:
        assert f"<td>{html.escape(name, quote=False)}</td>" in table4, name
    assert "evil.example" in text                                  # the names are there, as text only:
    assert not re.search(r"<(a|img)\b[^>]*evil\.example", text)    # no link, no image from a label
    for markup in ("<code>tick</code>", "<em>star</em>", "<em>under</em>", "<s>", "<del>", "<a "):
        assert markup not in table4, markup
    # the figures that name labels were drawn (a `$\macro$` in a tick label aborted the report in matplotlib)
    assert (page.parent / "plots" / "notes_per_label_minilm.png").stat().st_size > 0
    assert "&amp;amp;" in table4                                   # '&amp;' in a name stays those five characters


def test_labels_on_every_or_no_test_document_are_named_with_how_they_enter_f1_macro(report):
    """A label on 100% of the test documents scores F1 1.000 by predicting it everywhere and raises F1-macro; one
    on none has no F1 and is left out of it. The section and its per-label table say which labels, and how."""
    page, _ = report
    text = page.read_text(encoding="utf-8")
    section = text.split("\n## notes")[1]
    warning = next(line for line in section.splitlines() if line.startswith("> **warning:** Label(s) on every"))
    assert "on every test document: Nodule." in warning and "F1 is 1.000" in warning
    assert "on no test document: \\`tick\\` \\*star\\*." in warning and "n_undefined" in warning
    table4 = section.split("### Table 4")[1].split("### ")[0]
    assert "⚠ Label(s) on every test document: Nodule." in table4
    html_page = page.with_suffix(".html").read_text(encoding="utf-8")
    assert "on no test document: `tick` *star*." in html_page          # the name as text, in the warning too
