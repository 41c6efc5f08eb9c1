"""Bad input reaches the user as one short `error: ...` line (what is wrong, where, and the fix) and
exit code 2, through the real entry point `python -m mtlv.train` (run in-process here; one test
runs it as a real subprocess). The loaders' own unit tests live in tests/data/."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tarfile

import numpy as np
import pandas as pd
import pytest
from reliability._support import FAST, ROOT, assert_short_error, demo_rows

from mtlv.config import compose
from mtlv.errors import ConfigError, DataError, ModelLoadError, MTLVError, report_and_exit, user_error


# ----------------------------------------------------------------------------- SLURM submission
def test_gpu_sweep_submitted_to_slurm_from_a_machine_without_gpu(entry, monkeypatch, tmp_path):
    """The login node that submits a `trainer=gpu` SLURM sweep has no GPU: the sweeper does not refuse it
    (each job checks its node's GPU there); when sbatch refuses the jobs, that is one error line naming
    sbatch's reason, exit 2, and a plain CPU sweep there still refuses `trainer=gpu`."""
    import torch

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sbatch").write_text("#!/bin/sh\necho 'sbatch: error: Batch job submission failed: Invalid partition "
                                 "name specified' >&2\nexit 1\n")
    # submitit's executor looks for srun on PATH before it submits anything (it runs the job under srun
    # on the node); here it must only be found, never run.
    (fake / "srun").write_text("#!/bin/sh\necho 'srun must not run on the submitting machine' >&2\nexit 99\n")
    for tool in ("sbatch", "srun"):
        (fake / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    code, _, err = entry("-m", "hydra/launcher=slurm", "hydra.launcher.partition=nosuch", "trainer=gpu", *FAST,
                         "logger=none")
    assert_short_error(code, err, "hydra/launcher=slurm: sbatch did not queue the 1 job(s)",
                       "Invalid partition name specified", "hydra.launcher.partition=")
    assert "needs CUDA" not in err
    if not torch.cuda.is_available():
        code, _, err = entry("-m", "trainer=gpu", *FAST, "logger=none")
        assert_short_error(code, err, "trainer.accelerator=gpu", "needs CUDA")


# ----------------------------------------------------------------------------- dataset files
def test_missing_dataset_path(entry, tmp_path):
    code, _, err = entry("dataset=csv", f"dataset.path={tmp_path / 'nope.csv'}", *FAST)
    assert_short_error(code, err, "nope.csv", "not found", "dataset.path=")


def test_missing_dataset_path_as_a_real_process(tmp_path):
    """The same through a real interpreter: exit status 2, the message on stderr, no traceback."""
    env = dict(os.environ, MTLV_OUTPUT_DIR=str(tmp_path), HF_HUB_OFFLINE="1")
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run([sys.executable, "-m", "mtlv.train", "dataset=csv", f"dataset.path={tmp_path}/nope.csv"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert_short_error(proc.returncode, proc.stderr, "nope.csv", "not found")


def test_full_traceback_on_request(entry, monkeypatch, tmp_path):
    """HYDRA_FULL_ERROR=1 keeps the whole exception for debugging."""
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(Exception) as info:
        entry("dataset=csv", f"dataset.path={tmp_path / 'nope.csv'}", *FAST)
    assert "nope.csv" in str(info.value) or "nope.csv" in str(user_error(info.value))


def test_corrupt_archive(entry, tmp_path):
    bad = tmp_path / "ohsumed-all-docs.tar.gz"
    bad.write_bytes(b"\x1f\x8b" + os.urandom(200))  # a gzip magic number, then garbage
    code, _, err = entry("dataset=ohsumed", f"dataset.path={bad}", *FAST)
    assert_short_error(code, err, str(bad), "corrupt", "download it again")


def test_archive_with_the_wrong_layout(entry, tmp_path):
    inner = tmp_path / "src" / "some-folder" / "notes"
    inner.mkdir(parents=True)
    (inner / "0000001").write_text("a document in no category folder")
    archive = tmp_path / "ohsumed.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "some-folder", arcname="some-folder")
    code, _, err = entry("dataset=ohsumed", f"dataset.path={archive}", *FAST)
    assert_short_error(code, err, "no OHSUMED category folders", "C01..C23", "expected")


def test_csv_without_the_label_column(entry, table):
    path = table([{"text": "hello", "tags": "a"}, {"text": "world", "tags": "b"}])
    code, _, err = entry("dataset=csv", f"dataset.path={path}", *FAST)
    assert_short_error(code, err, str(path), "['labels']", "['text', 'tags']", "dataset.source.label_column")


def test_jsonl_without_the_text_column(entry, table):
    path = table([{"body": "hello", "labels": ["a"]}], name="data.jsonl")
    code, _, err = entry("dataset=csv", f"dataset.path={path}", *FAST)
    assert_short_error(code, err, str(path), "['text']", "dataset.source.text_columns")


def test_non_utf8_bytes_are_replaced_counted_and_train(tmp_path, caplog):
    """Bad bytes become U+FFFD with a count in the log; tokenizing them works (no crash deep inside)."""
    from mtlv.run.cell import load_corpus
    from mtlv.data.tokenize import tokenize
    from mtlv.models.encoder import load_tokenizer

    rows = [f"report {'alpha' if i % 2 else 'beta'} {i},{'a' if i % 2 else 'b'}".encode() for i in range(30)]
    rows[3] = b"caf\xe9 au lait \xff\xfe opacity,a"  # Latin-1 and stray bytes
    rows[7] = b"\x80\x81\x82,b"                      # nothing but invalid bytes
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"text,labels\n" + b"\n".join(rows) + b"\n")
    cfg = compose(["dataset=csv", f"dataset.path={path}", f"paths.output_dir={tmp_path}", *FAST])
    with caplog.at_level(logging.WARNING):
        corpus = load_corpus(cfg)
    assert "2 rows were not valid UTF-8" in caplog.text and str(path) in caplog.text
    assert corpus.notes["non_utf8"] == 2 and len(corpus) == 30
    assert "\ufffd" in corpus.texts[3] and corpus.texts[3].startswith("caf")
    tokens = tokenize(corpus.texts, load_tokenizer("packaged:minilm"), 64)
    assert len(tokens) == 30 and tokens.lengths[3] > 5
    assert tokens.lengths[7] >= 2  # only replacement characters: [CLS] [SEP], still a valid input


def test_rows_with_empty_text_are_dropped_and_counted(tmp_path, table, caplog):
    from mtlv.run.cell import load_corpus

    rows = demo_rows(40) + [{"text": "", "labels": "a"}, {"text": "   ", "labels": "b"}, {"text": None, "labels": "a"}]
    path = table(rows)
    cfg = compose(["dataset=csv", f"dataset.path={path}", f"paths.output_dir={tmp_path}", *FAST])
    with caplog.at_level(logging.WARNING):
        corpus = load_corpus(cfg)
    assert len(corpus) == 40 and corpus.notes["dropped_empty"] == 3
    assert "dropped 3 rows with empty text" in caplog.text


# ----------------------------------------------------------------------------- labels without positives
def test_label_without_positives_warns_and_its_f1_is_undefined(tmp_path, table, caplog):
    """A label with no positive in train/validation: a warning naming it; its F1 is NaN, F1-macro
    averages the other labels only, and n_undefined counts it (see docs/reliability.md)."""
    from mtlv.run.job import run_job

    rows = [{"text": r["text"], "a": int("a" in r["labels"]), "b": int("b" in r["labels"]), "never": 0}
            for r in demo_rows(80)]
    path = table(rows)
    cfg = compose(["dataset=csv", f"dataset.path={path}", "dataset.source.label_columns=[a,b,never]",
                   f"paths.output_dir={tmp_path}", "logger=none", *FAST])
    with caplog.at_level(logging.WARNING):
        result = run_job(cfg)
    assert "labels with no positive example: never (train), never (val)" in caplog.text
    assert "undefined (NaN)" in caplog.text
    metrics = json.loads(next((tmp_path / "runs" / "csv").glob("*/model/metrics.json")).read_text())
    test = metrics["test"]
    assert np.isnan(test["per_label"]["never"]["f1"]) and test["n_undefined"] == 1
    defined = [test["per_label"][n]["f1"] for n in ("a", "b")]
    assert test["f1_macro"] == pytest.approx(np.mean(defined))
    assert result["test"]["n_undefined"] == 1


# ----------------------------------------------------------------------------- grouping options
@pytest.mark.parametrize("k", [0, -1, 9])
def test_clustering_k_out_of_range(entry, k):
    code, _, err = entry("arch=gmhl", "clustering=kmedoids_label", f"clustering.k={k}", *FAST)
    assert_short_error(code, err, f"clustering.k={k}: choose 1..8")


@pytest.mark.parametrize("groups, needles", [
    ("[[0,1,2],[Foo,3,4,5,6,7]]", ["unknown label 'Foo' in group 1", "labels are"]),
    ("[[0,1,2],[2,3,4,5,6,7]]", ["'opacity' appears in group 0 and group 1", "exactly one group"]),
    ("[[0,1,2],[3,4]]", ["['Nodule', 'Emphysema', 'spine/degenerative'] are in no group"]),
    ("[[0,1,2],[3,4,5,6,7,8]]", ["label index 8 in group 1 is out of range 0..7"]),
], ids=["unknown", "duplicate", "missing", "index"])
def test_given_groups_must_partition_the_labels(entry, groups, needles):
    code, _, err = entry("arch=gmhl", "clustering=given", f"clustering.groups={groups}", *FAST)
    assert_short_error(code, err, "clustering.groups", *needles)


def test_given_groups_are_required(entry):
    code, _, err = entry("arch=gmhl", "clustering=given", *FAST)
    assert_short_error(code, err, "clustering=given needs clustering.groups")


def test_description_file_missing_labels(entry, table, tmp_path):
    rows = [{"text": f"report {i} alpha" * (i % 2 + 1), "labels": ["a;b", "b;c", "a;c"][i % 3]} for i in range(60)]
    path = table(rows)
    descriptions = tmp_path / "descriptions.yaml"
    descriptions.write_text("a: The first letter.\nb: The second letter.\n")
    code, _, err = entry("dataset=csv", f"dataset.path={path}", f"dataset.source.descriptions_path={descriptions}",
                         "arch=gmhl", "clustering=kmedoids_desc", "clustering.k=2", *FAST)
    assert_short_error(code, err, "1 of 3 have none: ['c']", "descriptions_path", "clustering=kmedoids_label")


# ----------------------------------------------------------------------------- models and sizes
def test_unknown_hub_id_offline_says_so_and_how_to_use_a_folder(entry):
    code, _, err = entry("model.name_or_path=some-org/no-such-model", *FAST[1:])
    assert_short_error(code, err, "some-org/no-such-model", "HF_HUB_OFFLINE=1", "model.name_or_path=/path/to/model",
                       "huggingface-cli download")


def test_incomplete_local_model_folder(entry, tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "README.md").write_text("weights go here")
    code, _, err = entry(f"model.name_or_path={folder}", *FAST[1:])
    assert_short_error(code, err, str(folder), "not a complete Hugging Face")


def test_unknown_hub_id_fails_fast_without_hf_hub_offline(tmp_path):
    """Without HF_HUB_OFFLINE and without a network, transformers retries for ~25 s per file; MTLV
    sees the Hub is unreachable and asks for local files only (with a network: a quick 404). Checked by
    what MTLV asks transformers for, not by a clock (a loaded machine makes any time limit flaky)."""
    code = ("from mtlv.errors import ModelLoadError\nfrom mtlv.models import encoder\n"
            "asked = []\nreal = encoder.AutoConfig.from_pretrained\n"
            "def spy(*args, **kwargs):\n    asked.append(kwargs.get('local_files_only'))\n"
            "    return real(*args, **kwargs)\n"
            "encoder.AutoConfig.from_pretrained = spy\n"
            "try:\n    encoder.model_max_length('some-org/no-such-model')\nexcept ModelLoadError as err:\n"
            "    print(asked, encoder.hub_reachable()); print(err)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    asked, message = proc.stdout.split("\n", 1)
    # one request; local files only (no retries) unless the Hub answers, which gives a quick 404
    assert asked in ("[True] False", "[None] True"), proc.stdout
    assert "some-org/no-such-model" in message and "model.name_or_path=/path/to/model" in message


@pytest.mark.parametrize("overrides, needle", [
    (["model.max_length=1000"], "model.max_length=1000: packaged:minilm accepts 8..128 tokens; set model.max_length=128"),
    (["data.batch_size=0"], "data.batch_size=0: must be at least 1"),
    (["data.eval_batch_size=-4"], "data.eval_batch_size=-4: must be at least 1"),
    (["split.folds=1"], "split.folds=1: cross-validation needs at least 2 folds"),
    (["split.folds=5", "split.fold=5"], "split.fold=5 is out of range for split.folds=5: use 0..4"),
    (["split.folds=5", "split.fold=-1"], "split.fold=-1 is out of range"),
], ids=["max_length", "batch_size", "eval_batch_size", "folds", "fold", "negative_fold"])
def test_bad_sizes(entry, overrides, needle):
    code, _, err = entry(*FAST, *overrides)
    assert_short_error(code, err, needle)


def test_bad_split_options_stop_a_sweep_before_its_jobs(entry, tmp_path):
    """Checked once in the sweeper, not eight times in eight failed jobs."""
    code, out, err = entry("arch=stl", "split.folds=1", *FAST)
    assert_short_error(code, err, "split.folds=1")
    assert not list((tmp_path / "out").glob("runs/*/*/group-*"))


# ----------------------------------------------------------------------------- conflicting overrides
@pytest.mark.parametrize("overrides, message", [
    (["arch=mtl", "clustering.k=5"], "clustering.k=5 is ignored: arch=mtl always uses one group of all labels"),
    (["arch=stl", "clustering=kmedoids_desc"], "is ignored: arch=stl always uses one group per label"),
    (["arch=mtl", "clustering=given", "clustering.groups=[[0,1],[2,3,4,5,6,7]]"],
     "is ignored: arch=mtl always uses one group of all labels"),
    (["arch=gmhl", "clustering=given", "clustering.k=4", "clustering.groups=[[0,1],[2,3,4,5,6,7]]"],
     "clustering.k=4 is ignored: clustering=given takes the groups from clustering.groups"),
    (["arch=mtl", "group_index=2"], "group_index=2 is ignored: arch=mtl trains one model for all groups"),
], ids=["mtl+k", "stl+kmedoids", "mtl+given", "given+k", "mtl+group_index"])
def test_conflicting_overrides_explain_what_is_ignored(overrides, message, caplog, tmp_path):
    from mtlv.checks import check_config

    cfg = compose([*FAST, *overrides, f"paths.output_dir={tmp_path}"])
    with caplog.at_level(logging.WARNING, logger="mtlv.checks"):
        check_config(cfg, 8)
    assert message in caplog.text


def test_group_index_out_of_range_for_a_one_model_per_group_job(entry):
    code, _, err = entry("arch=stl", "hydra.mode=RUN", "group_index=8", *FAST)
    assert_short_error(code, err, "group_index=8", "0..7")


# ----------------------------------------------------------------------------- the error plumbing
def test_errors_wrapped_by_hydra_instantiate_are_unwrapped():
    from hydra.errors import InstantiationException

    cause = ConfigError("dataset.x=1: bad")
    try:
        try:
            raise cause
        except ConfigError as err:
            raise InstantiationException("Error in call to target 'x':\nConfigError(...)") from err
    except InstantiationException as wrapped:
        assert user_error(wrapped) is cause
    assert user_error(RuntimeError("a bug")) is None


def test_a_bug_is_not_disguised_as_a_user_error(capsys):
    with pytest.raises(KeyError):
        try:
            raise KeyError("a bug")
        except KeyError as err:
            report_and_exit(err)
    with pytest.raises(SystemExit) as info:
        report_and_exit(ModelLoadError("could not load"))
    assert info.value.code == 2 and capsys.readouterr().err == "error: could not load\n"
    assert issubclass(ModelLoadError, MTLVError)


def test_checks_run_before_any_data_is_tokenized(entry, tmp_path):
    code, _, err = entry("model=tiny", "model.max_length=4", *FAST[1:])
    assert_short_error(code, err, "model.max_length=4", "set model.max_length=8")
    assert not (tmp_path / "out" / "cache" / "tokens").exists()
    assert not list((tmp_path / "out").glob("runs/**/label_counts.csv"))  # no job folder was prepared either


def test_predict_entry_point_reports_errors_the_same_way(entry, tmp_path):
    code, _, err = entry(f"run={tmp_path / 'no-such-run'}", "input=-", f"tracking_uri=sqlite:///{tmp_path}/m.db",
                         module="mtlv.predict")
    assert_short_error(code, err, "no-such-run", "is neither a folder nor a run id")
    (tmp_path / "job").mkdir()
    code, _, err = entry(f"run={tmp_path / 'job'}", f"input={tmp_path / 'missing.csv'}", module="mtlv.predict")
    assert_short_error(code, err, "missing.csv", "not found")


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
                   ["split.folds=20", "12 documents", "split.folds=12 or fewer"]),
    "header-only": (["dataset=csv", "dataset.path={tmp}/header.csv"], ["{tmp}/header.csv", "no documents"]),
    "no-labels": (["dataset=csv", "dataset.path={tmp}/nolabels.csv"],
                  ["{tmp}/nolabels.csv", "no labels", "dataset.source.label_column"]),
    "openi-missing-file": (["dataset=openi", "dataset.path=/no/such/file.csv"],
                           ["dataset.path=/no/such/file.csv", "not found"]),
    "sweep-folds>docs": (["arch=stl", "dataset=csv", "dataset.path={tmp}/twelve.csv", "split.folds=20"],
                         ["split.folds=20", "split.folds=12 or fewer"]),
}


@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "file.txt").write_text("a regular file: nothing can be created below it\n")
    pd.DataFrame(demo_rows(1)).to_csv(tmp_path / "one.csv", index=False)
    pd.DataFrame(demo_rows(12)).to_csv(tmp_path / "twelve.csv", index=False)
    (tmp_path / "header.csv").write_text("text,labels\n")
    pd.DataFrame({"text": [f"report {i}" for i in range(30)], "labels": [""] * 30}).to_csv(
        tmp_path / "nolabels.csv", index=False)
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


# ----------------------------------------------------------------------------- the check table, in-process
@pytest.mark.parametrize("override, needle", [
    ("trainer.max_epochs=0", "trainer.max_epochs=0: must be at least 1"),
    ("trainer.accelerator=gpus", "trainer.accelerator='gpus': use one of auto, cpu, gpu"),
    ("trainer.accumulate_grad_batches=1.5", "trainer.accumulate_grad_batches=1.5: must be a whole number"),
    ("data.eval_batch_size=abc", "data.eval_batch_size='abc': must be a whole number"),
    ("data.length_grouping=maybe", "data.length_grouping='maybe': must be true or false"),
    ("split.folds=2.5", "split.folds=2.5: must be a whole number"),
    ("split.val_size=abc", "split.val_size='abc': must be a number"),
    ("split.val_size=0", "split.val_size=0 must be a fraction between 0 and 1"),
    ("model.module.schedule=cosine", "model.module.schedule='cosine': use one of constant, linear"),
    ("model.module.loss_reduction=max", "model.module.loss_reduction='max': use one of sum, mean, weighted"),
    ("model.module.dropout=1.0", "model.module.dropout=1.0: must be from 0 to 1 (exclusive)"),
    ("model.module.lr=-1", "model.module.lr=-1: must be at least 0"),
    ("model.module.warmup_ratio=abc", "model.module.warmup_ratio='abc': must be a number"),
    ("torch_threads=0", "torch_threads=0: must be at least 1 (or null)"),
    ("dataset.limit=5", "dataset.limit=5: must be at least 10"),
    ("group_index=-1", "group_index=-1: must be at least 0"),
    ("eval.save_weights=yes", "eval.save_weights='yes': must be true or false"),
    ("clustering.feature=title", "clustering.feature='title': use one of name, description"),
    ("clustering.backend=clara", "clustering.backend='clara': use one of"),
    ("clustering.k_max=0", "clustering.k_max=0: must be at least 1"),
])
def test_option_table_rejects(tmp_path, override, needle):
    from mtlv.checks import check_options

    extra = ["clustering=kmedoids_label", "arch=gmhl"] if override.startswith("clustering.") else []
    cfg = compose([*FAST, *extra, override, f"paths.output_dir={tmp_path}"])
    with pytest.raises(ConfigError) as info:
        check_options(cfg)
    assert needle in str(info.value)


@pytest.mark.parametrize("config_name, overrides", [
    ("train", []), ("train", ["arch=gmtl"]), ("train", ["dataset=ohsumed", "trainer=cpu"]),
    ("train", ["clustering=given", "clustering.groups=[[0,1],[2,3,4,5,6,7]]"]), ("baseline", []),
    ("train", ["experiment=openi_paper"]), ("train", ["experiment=ohsumed_paper"]), ("train", ["experiment=smoke"]),
])
def test_option_table_accepts_the_shipped_configs(tmp_path, config_name, overrides):
    from mtlv.checks import check_options

    check_options(compose([*overrides, f"paths.output_dir={tmp_path}"], config_name=config_name))


def test_option_table_names_only_keys_that_exist():
    """A renamed config key must not silently drop out of the checks."""
    from omegaconf import OmegaConf

    from mtlv.checks import OPTIONS, PREDICT_OPTIONS

    configs = [compose(["clustering=kmedoids_label", "dataset=ohsumed"], config_name="baseline"),
               compose(["clustering=given"]), compose(["arch=gmtl", "clustering=affinity"])]
    for option in OPTIONS:
        assert any(OmegaConf.select(c, option.key, default="<absent>") != "<absent>" for c in configs), option.key
    predict = compose(["run=x", "input=y"], config_name="predict")
    assert all(OmegaConf.select(predict, o.key, default="<absent>") != "<absent>" for o in PREDICT_OPTIONS)


def test_a_job_error_in_a_sweep_is_listed_by_the_sweeper(entry, tmp_path):
    """In a sweep job the wrapper re-raises, so the sweeper runs the other jobs and lists the failures;
    it must not end the whole sweep at the first job (with `error:` for that job alone)."""
    code, _, err = entry("-m", "dataset=csv", f"dataset.path={tmp_path}/a.csv,{tmp_path}/b.csv", *FAST, "logger=none")
    assert_short_error(code, err, "error: 2 of 2 jobs failed", f"DataError: data file {tmp_path}/a.csv not found",
                       f"DataError: data file {tmp_path}/b.csv not found")


def test_entry_point_wrapper(monkeypatch, capsys):
    from hydra.errors import InstantiationException

    from mtlv import errors

    @errors.entry_point
    def wrapped(exc: BaseException):
        raise exc

    def instantiation_error():
        try:
            raise DataError("data.csv: bad")
        except DataError as err:
            try:
                raise InstantiationException("Error in call to target 'x'") from err
            except InstantiationException as wrapped_err:
                return wrapped_err

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as info:
        wrapped(instantiation_error())
    assert info.value.code == 2 and capsys.readouterr().err == "error: data.csv: bad\n"
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        wrapped(ZeroDivisionError("x"))
    monkeypatch.setattr(errors, "_in_sweep_job", lambda: True)  # a sweep job: the sweeper lists it
    with pytest.raises(DataError, match="data.csv: bad"):
        wrapped(instantiation_error())
    monkeypatch.setattr(errors, "_in_sweep_job", lambda: False)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(InstantiationException):
        wrapped(instantiation_error())


def test_trainer_deterministic_takes_lightnings_warn(entry):
    """Found on the GPU: Lightning's `deterministic="warn"` (deterministic where CUDA has such kernels) was
    refused as not a bool; a value that is neither names all three."""
    from mtlv.checks import check_values

    for value in ("true", "false", "warn", "null"):
        check_values(compose([f"trainer.deterministic={value}"]))
    code, _, err = entry("trainer.deterministic=maybe", *FAST)
    assert_short_error(code, err, "trainer.deterministic='maybe'", "true or false or warn")


def test_a_job_error_in_a_clustered_sweep_is_listed_too(entry, tmp_path):
    """The same for GMHL cells, whose groupings and model keys the sweeper computes before launching
    (precompute_groupings, reuse_models): a missing file is left to each job, which lists it."""
    code, _, err = entry("-m", "arch=gmhl", "clustering=cooccurrence", "clustering.k=2", "dataset=csv",
                         f"dataset.path={tmp_path}/a.csv,{tmp_path}/b.csv", *FAST, "logger=none",
                         "hydra/launcher=parallel", "hydra.launcher.n_jobs=2")
    assert_short_error(code, err, "error: 2 of 2 jobs failed", f"{tmp_path}/a.csv not found",
                       f"{tmp_path}/b.csv not found")
