"""Every bad value, as a user runs it: `python -m <entry point> ...` in its own process (or, where the imports
of a training process would cost too much in the default suite, in-process). Each case must stop with exactly
one `error:` line on stderr that names the value at fault, exit code 2, no traceback, and (where it matters)
before anything is trained."""
from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
from reliability._support import ROOT, demo_rows


# ----------------------------------------------------------------------------- every value, through the CLI
# As a user runs it: `python -m <entry point> ...` in its own process. Each case must stop with exactly
# one `error:` line on stderr that names the value at fault, exit code 2, no traceback, and (where it
# matters) before anything is trained. Most options stop before torch is even imported (~1-2 s each).
CLI_BASE = ["model=tiny", "logger=none", "torch_threads=1", "trainer.max_epochs=1"]


def cli(tmp_path, *args: str, module: str = "mtlv.train"):
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env.update(MTLV_OUTPUT_DIR=str(tmp_path / "out"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    flags = [a for a in args if a.startswith("-")]  # Hydra wants -m before the overrides
    return subprocess.run([sys.executable, "-m", module, *flags, *[a for a in args if a not in flags]], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


def in_process(entry, *args: str, module: str = "mtlv.train"):
    """The same entry point run in this process (no interpreter and import start-up)."""
    from types import SimpleNamespace

    code, out, err = entry(*args, module=module)
    return SimpleNamespace(returncode=code, stdout=out, stderr=err)


def assert_one_error_line(proc, *needles: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def nothing_trained(tmp_path) -> bool:
    out = tmp_path / "out"
    return not list(out.glob("runs/*/*/model")) and not list(out.glob("runs/*/*/group-*")) \
        and not list(out.glob("**/*.ckpt"))


# name -> (CLI arguments, words the error line must contain); {tmp} is the test's folder.
# Options alone: stopped before torch is imported, so each costs only Hydra's start-up.
CLI_CASES = {
    "threshold=best": (["eval.threshold=best"], ["eval.threshold='best'", "global", "per_label"]),
    "k=2.5": (["arch=gmhl", "clustering=kmedoids_label", "clustering.k=2.5"], ["clustering.k=2.5", "whole number"]),
    "k=abc": (["arch=gmhl", "clustering=kmedoids_label", "clustering.k=abc"], ["clustering.k='abc'", "whole number"]),
    "seed=abc": (["seed=abc"], ["seed='abc'", "whole number", "seed=42"]),
    "batch_size=1.5": (["data.batch_size=1.5"], ["data.batch_size=1.5", "whole number"]),
    "groups-flat": (["arch=gmhl", "clustering=given", "clustering.groups=[0,1,2,3,4,5,6,7]"],
                    ["clustering.groups=[0,1,2,3,4,5,6,7]", "clustering.groups=[[0,1],[2,3,4]]"]),
    "groups-empty": (["arch=gmhl", "clustering=given", "clustering.groups=[[0,1],[],[2,3,4,5,6,7]]"],
                     ["clustering.groups=[[0,1],[],[2,3,4,5,6,7]]: group 1 is empty", "remove it",
                      "clustering.groups=[[0,1],[2,3,4,5,6,7]]"]),
    "pooling=max": (["model.module.pooling=max"], ["model.module.pooling='max'", "cls, pooler, mean"]),
    "output_dir": (["paths.output_dir={tmp}/file.txt/out"],
                   ["paths.output_dir={tmp}/file.txt/out", "MTLV_OUTPUT_DIR=", "paths.output_dir=/"]),
    "max_epochs=abc": (["trainer.max_epochs=abc"], ["trainer.max_epochs='abc'", "whole number"]),
    "test_size=1.5": (["split.test_size=1.5"], ["split.test_size=1.5", "between 0 and 1"]),
    "num_workers=-1": (["data.num_workers=-1"], ["data.num_workers=-1", "at least 0"]),
    "max_length=abc": (["model.max_length=abc"], ["model.max_length='abc'", "whole number"]),
    "sweep-one-bad-cell": (["-m", "seed=1,abc"], ["seed='abc'"]),
    "csv-without-path": (["dataset=csv"], ["dataset.path: required", "dataset.path=..."]),
    "sweep-threshold": (["arch=stl", "eval.threshold=best"], ["eval.threshold='best'"]),
}


# Cases that need the data (or torch) loaded first: through the CLI in the slow suite (the imports of a
# training process cost ~10-30 s each on a busy CPU), in-process in the default one.
DATA_CASES = {
    "trainer=gpu": (["trainer=gpu"], ["trainer.accelerator=gpu", "trainer=cpu", "CUDA"]),
    "one-document": (["dataset=csv", "dataset.path={tmp}/one.csv"], ["{tmp}/one.csv", "1 document", "at least 10"]),
    "folds>docs": (["dataset=csv", "dataset.path={tmp}/twelve.csv", "split.folds=20"],
                   ["split.folds=20", "12 documents", "0 test document(s)", "split.folds=6 or fewer"]),
    "test_size=0.99": (["dataset.limit=200", "split.test_size=0.99"],
                       ["split.test_size=0.99", "200 documents give 1 train and 1 validation document(s) (of 1 train, "
                        "1 validation, 198 test)", "at least 5 train, 2 validation, 2 test documents",
                        "lower split.test_size"]),
    "val_size=0.001": (["dataset.limit=200", "split.val_size=0.001"],
                       ["split.val_size=0.001", "1 validation document(s)", "raise split.val_size"]),
    "test_size=0.001": (["dataset.limit=200", "split.test_size=0.001"],
                        ["split.test_size=0.001", "1 test document(s)", "raise split.test_size"]),
    "header-only": (["dataset=csv", "dataset.path={tmp}/header.csv"], ["{tmp}/header.csv", "no documents"]),
    "no-labels": (["dataset=csv", "dataset.path={tmp}/nolabels.csv"],
                  ["{tmp}/nolabels.csv", "no labels", "dataset.source.label_column"]),
    "list-cell": (["dataset=csv", "dataset.path={tmp}/listcells.csv"],
                  ["{tmp}/listcells.csv: data row 9 (1-based, header not counted), column 'labels'",
                   "\"['Cardiomegaly', 'Nodule'\"", "['a', 'b']"]),
    "utf-16": (["dataset=csv", "dataset.path={tmp}/utf16.csv"],
               ["{tmp}/utf16.csv is not UTF-8", "UTF-16", "re-save it as UTF-8", "dataset.source.encoding=utf-16"]),
    "folder": (["dataset=csv", "dataset.path={tmp}/tables"],
               ["dataset.path={tmp}/tables is a folder", "dataset.path={tmp}/tables/twelve.csv"]),
    "fifo": (["dataset=csv", "dataset.path={tmp}/pipe.csv"], ["{tmp}/pipe.csv is not a regular file", "pipe"]),
    "numeric-label-names": (["dataset=csv", "dataset.path={tmp}/years.csv", "arch=gmhl", "clustering=given",
                             "clustering.groups=[[2023,1998],[1,2]]"],
                            ["2023 in group 0 reads as label index 2023", "a label is named '2023'",
                             "'clustering.groups=[[\"2023\",\"1\"],[...]]'"]),
    "openi-missing-file": (["dataset=openi", "dataset.path=/no/such/file.csv"],
                           ["dataset.path=/no/such/file.csv", "not found"]),
    "sweep-folds>docs": (["arch=stl", "dataset=csv", "dataset.path={tmp}/twelve.csv", "split.folds=20"],
                         ["split.folds=20", "split.folds=6 or fewer"]),
}


@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "file.txt").write_text("a regular file: nothing can be created below it\n")
    pd.DataFrame(demo_rows(1)).to_csv(tmp_path / "one.csv", index=False)
    pd.DataFrame(demo_rows(12)).to_csv(tmp_path / "twelve.csv", index=False)
    (tmp_path / "header.csv").write_text("text,labels\n")
    pd.DataFrame({"text": [f"report {i}" for i in range(30)], "labels": [""] * 30}).to_csv(
        tmp_path / "nolabels.csv", index=False)
    cells = [str(["Cardiomegaly", "Nodule"][: i % 3]) for i in range(30)]
    cells[8] = cells[8][:-1]  # "['Cardiomegaly', 'Nodule'": its closing bracket lost
    pd.DataFrame({"text": [f"report {i}" for i in range(30)], "labels": cells}).to_csv(
        tmp_path / "listcells.csv", index=False)
    (tmp_path / "utf16.csv").write_bytes((tmp_path / "twelve.csv").read_text().encode("utf-16"))
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "twelve.csv").write_bytes((tmp_path / "twelve.csv").read_bytes())
    os.mkfifo(tmp_path / "pipe.csv")
    years = ["1998", "2023", "1", "2"]
    pd.DataFrame({"text": [f"report {i}" for i in range(30)], "labels": [years[i % 4] for i in range(30)]}).to_csv(
        tmp_path / "years.csv", index=False)
    return tmp_path


def _fill(tmp_path, items: list[str]) -> list[str]:
    return [item.replace("{tmp}", str(tmp_path)) for item in items]


def _skip_gpu_case_where_cuda_exists(case: str) -> None:
    import torch

    if case == "trainer=gpu" and torch.cuda.is_available():
        pytest.skip("CUDA is available here: trainer=gpu is valid")


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_every_bad_value_is_one_error_line_before_any_work(case, bad_files):
    args, needles = CLI_CASES[case]
    proc = cli(bad_files, *CLI_BASE, *_fill(bad_files, args))
    assert_one_error_line(proc, *_fill(bad_files, needles))
    assert nothing_trained(bad_files)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(DATA_CASES))
def test_every_bad_data_file_is_one_error_line_before_any_work(case, bad_files):
    _skip_gpu_case_where_cuda_exists(case)
    args, needles = DATA_CASES[case]
    proc = cli(bad_files, *CLI_BASE, *_fill(bad_files, args))
    assert_one_error_line(proc, *_fill(bad_files, needles))
    assert nothing_trained(bad_files)


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_every_bad_data_file_is_one_error_line_before_any_work_in_process(case, bad_files, entry):
    _skip_gpu_case_where_cuda_exists(case)
    args, needles = DATA_CASES[case]
    proc = in_process(entry, *CLI_BASE, *_fill(bad_files, args))
    assert_one_error_line(proc, *_fill(bad_files, needles))
    assert nothing_trained(bad_files)


@pytest.mark.parametrize("content, needles", [
    ("", ["no texts to predict"]),
    ("text,id\n", ["no texts to predict"]),
    ('text,id\n"an unclosed quote,1\n', ["cannot parse it as CSV"]),
    ('text,id\n"a",1\n"b",2,3,4\n', ["cannot parse it as CSV", "Expected 2 fields"]),
    (None, ["is a folder"]),
], ids=["empty", "header-only", "unclosed-quote", "ragged", "folder"])
def test_predict_bad_input_files(tmp_path, content, needles):
    run = tmp_path / "run"
    run.mkdir()
    target = tmp_path / "in.csv"
    if content is None:
        target.mkdir()
    else:
        target.write_text(content)
    proc = cli(tmp_path, f"run={run}", f"input={target}", module="mtlv.predict")
    assert_one_error_line(proc, f"input={target}", *needles)


def test_full_traceback_on_request_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    env = dict(os.environ, MTLV_OUTPUT_DIR=str(tmp_path / "out"))
    proc = subprocess.run([sys.executable, "-m", "mtlv.train", *CLI_BASE, "seed=abc"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    assert "mtlv.errors.ConfigError: seed='abc'" in proc.stderr


def test_predict_bad_jsonl(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "in.jsonl").write_text('{"text": "fine"}\n{"text": broken\n')
    proc = cli(tmp_path, f"run={tmp_path / 'run'}", f"input={tmp_path / 'in.jsonl'}", module="mtlv.predict")
    assert_one_error_line(proc, "in.jsonl", "cannot parse it as JSON lines")


ENTRY_CASES = {  # module -> (arguments, words of the error line); mtlv.train: above
    "cluster": ("mtlv.cluster", ["clustering=kmedoids_label", "clustering.k=2.5"], ["clustering.k=2.5"]),
    "predict": ("mtlv.predict", ["run=.", "input=x.txt", "batch_size=abc"], ["batch_size='abc'"]),
    "predict-no-input": ("mtlv.predict", ["run=."], ["input: required", "input=..."]),
    "predict-output": ("mtlv.predict", ["run=.", "input=x.txt", "output={tmp}/file.txt/p.csv"],
                       ["output={tmp}/file.txt: cannot write there"]),
    "report": ("mtlv.report", ["select_on=best"], ["select_on=best", "select_on=val"]),
    "report-override": ("mtlv.report", ["no_such_option=1"], ["no_such_option"]),
    "baseline": ("mtlv.baseline", ["eval.threshold=best"], ["eval.threshold='best'"]),
    "aggregate": ("mtlv.aggregate", ["{tmp}"], ["{tmp} is neither a cell folder"]),
}


SLOW_ENTRY_CASES = ("baseline", "aggregate")  # they import MLflow before the check: in-process by default


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_ENTRY_CASES else c
                                  for c in ENTRY_CASES])
def test_every_entry_point_reports_errors_the_same_way(tmp_path, case):
    module, args, needles = ENTRY_CASES[case]
    (tmp_path / "file.txt").write_text("a regular file: nothing can be created below it\n")
    proc = cli(tmp_path, *_fill(tmp_path, args), module=module)
    assert_one_error_line(proc, *_fill(tmp_path, needles))


@pytest.mark.parametrize("case", SLOW_ENTRY_CASES)
def test_every_entry_point_reports_errors_the_same_way_in_process(tmp_path, case, entry):
    module, args, needles = ENTRY_CASES[case]
    if module == "mtlv.aggregate":  # argparse, not Hydra: it reads sys.argv like the CLI
        import importlib

        with pytest.raises(SystemExit) as info:
            importlib.import_module(module).main(_fill(tmp_path, args))
        assert info.value.code == 2
        return
    assert_one_error_line(in_process(entry, *_fill(tmp_path, args), module=module), *_fill(tmp_path, needles))
