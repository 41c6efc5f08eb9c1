"""Bad input reaches the user as one short `error: ...` line (what is wrong, where, and the fix) and
exit code 2, through the real entry point `python -m mtlv.train` (run in-process here; one test
runs it as a real subprocess). The loaders' own unit tests live in tests/data/."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reliability._support import FAST, ROOT, assert_short_error, demo_rows

from mtlv.config import compose
from mtlv.errors import ConfigError, DataError, ModelLoadError, MTLVError, report_and_exit, user_error
from mtlv.layout import JobLayout


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
    from mtlv.data.load import load_corpus
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
    # 3 bytes on line 5 (rows[3]; the header is line 1), 3 on line 9
    assert "6 byte(s) on 2 line(s) (5, 9) were not valid UTF-8" in caplog.text and str(path) in caplog.text
    assert corpus.notes["non_utf8"] == 6 and len(corpus) == 30
    assert "\ufffd" in corpus.texts[3] and corpus.texts[3].startswith("caf")
    tokens = tokenize(corpus.texts, load_tokenizer("packaged:minilm"), 64)
    assert len(tokens) == 30 and tokens.lengths[3] > 5
    assert tokens.lengths[7] >= 2  # only replacement characters: [CLS] [SEP], still a valid input


def test_rows_with_empty_text_are_dropped_and_counted(tmp_path, table, caplog):
    from mtlv.data.load import load_corpus

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
    folder = next((tmp_path / "runs" / "csv").glob("*/model"))
    # strict JSON (jq, JavaScript): the undefined F1 is null in the file, NaN where MTLV reads it back
    written = {path.name: strict_json(path) for path in folder.rglob("*.json")}
    assert written["metrics.json"]["test"]["per_label"]["never"]["f1"] is None
    test = JobLayout(folder).metrics()["test"]
    assert np.isnan(test["per_label"]["never"]["f1"]) and test["n_undefined"] == 1
    defined = [test["per_label"][n]["f1"] for n in ("a", "b")]
    assert test["f1_macro"] == pytest.approx(np.mean(defined))
    assert result["test"]["n_undefined"] == 1


def strict_json(path):
    def refuse(constant: str):
        raise ValueError(f"{path}: {constant} is not JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def test_json_files_are_strict_and_read_back_nan(tmp_path, capsys):
    """NaN and infinities are written as null (Python's bare NaN breaks strict readers); the readers of metrics
    turn them back into NaN, and a saved result with an undefined F1-macro prints its summary again."""
    from mtlv.io import read_json, write_json
    from mtlv.run import record

    metrics = {part: {"f1_macro": float("nan"), "f1_micro": 0.5, "subset_accuracy": float("inf"), "n_undefined": 2,
                      "per_label": {"x": {"f1": np.float64("nan")}}} for part in ("test", "test_at_0.5", "val")}
    job = JobLayout(tmp_path)
    write_json(job.metrics_json, {**metrics, "threshold": [0.5, 0.25]})
    write_json(job.result_json, {"run_name": "r", "labels": ["x"], "group_index": None, "run_id": None,
                                 "folder": str(tmp_path), "elapsed_s": 1.0, **record_headlines(metrics)})
    assert "NaN" not in job.metrics_json.read_text() and "Infinity" not in job.metrics_json.read_text()
    assert strict_json(job.metrics_json)["test"]["f1_macro"] is None
    assert strict_json(job.metrics_json)["test"]["per_label"]["x"]["f1"] is None
    assert strict_json(job.result_json)["val"]["subset_accuracy"] is None
    back, result = job.metrics(), job.result()
    assert np.isnan(back["val"]["per_label"]["x"]["f1"]) and back["threshold"] == [0.5, 0.25]
    assert np.isnan(result["test"]["f1_macro"]) and result["test"]["f1_micro"] == 0.5
    assert result["run_id"] is None and result["group_index"] is None  # nulls that are not numbers stay None
    assert read_json(job.result_json)["test"]["f1_macro"] is None
    record.print_job(result, back, rerun=True)
    assert re.search(r"test @ val-chosen threshold +nan +0\.5000 +nan\n", capsys.readouterr().out)


def record_headlines(metrics: dict) -> dict:
    from mtlv.run.record import headline

    return {part: headline(values) for part, values in metrics.items()}


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
    (["model.max_length=1000"], "model.max_length=1000: model=tiny takes 8 to 128 tokens (its random_init.max_position_embeddings=128); "
     "add model.max_length=128 to the command"),
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
    with caplog.at_level(logging.WARNING, logger="mtlv.grouping.checks"):
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
    assert_short_error(code, err, "model.max_length=4", "add model.max_length=8")
    assert not (tmp_path / "out" / "cache" / "tokens").exists()
    assert not list((tmp_path / "out").glob("runs/**/label_counts.csv"))  # no job folder was prepared either


def test_predict_entry_point_reports_errors_the_same_way(entry, tmp_path):
    code, _, err = entry(f"run={tmp_path / 'no-such-run'}", "input=-", f"tracking_uri=sqlite:///{tmp_path}/m.db",
                         module="mtlv.predict")
    assert_short_error(code, err, "no-such-run", "is neither a folder nor a run id")
    (tmp_path / "job").mkdir()
    code, _, err = entry(f"run={tmp_path / 'job'}", f"input={tmp_path / 'missing.csv'}", module="mtlv.predict")
    assert_short_error(code, err, "missing.csv", "not found")


def test_predict_writes_no_log_file_and_only_predictions_to_stdout(logged_run, entry, monkeypatch, tmp_path):
    """`mtlv.predict` runs in the current folder (Hydra's run dir is `.`): Hydra's default logging left an empty
    predict.log there. Its log lines go to stderr; stdout is the CSV alone."""
    import io

    result = logged_run[0]
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.setattr(sys, "stdin", io.StringIO("the heart is enlarged\nno acute disease\n"))
    code, out, err = entry(f"run={result['folder']}", "input=-", module="mtlv.predict")
    assert code == 0, err
    assert list(here.iterdir()) == [] and not list(tmp_path.rglob("*.log"))
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame["id"]) == [0, 1] and list(frame.columns[1:-1]) == [f"prob:{n}" for n in result["labels"]]


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

    from mtlv.options import OPTIONS, PREDICT_OPTIONS

    configs = [compose(["clustering=kmedoids_label", "dataset=ohsumed"], config_name="baseline"),
               compose(["clustering=given"]), compose(["arch=gmtl", "clustering=affinity"]),
               compose(["hydra/launcher=parallel"], return_hydra=True)]
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
    monkeypatch.setattr(errors, "in_sweep_job", lambda: True)  # a sweep job: the sweeper lists it
    with pytest.raises(DataError, match="data.csv: bad"):
        wrapped(instantiation_error())
    monkeypatch.setattr(errors, "in_sweep_job", lambda: False)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(InstantiationException):
        wrapped(instantiation_error())


def test_trainer_deterministic_takes_lightnings_warn(entry):
    """Found on the GPU: Lightning's `deterministic="warn"` (deterministic where CUDA has such kernels) was
    refused as not a bool; a value that is neither names all three."""
    from mtlv.options import check_values

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


# ----------------------------------------------------------------------------- values other libraries refuse late
@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_out_of_numpys_range_is_one_error_line(entry, tmp_path, seed):
    """numpy, torch and Lightning take seeds 0..2**32-1; -1 was a numpy traceback after the data had loaded."""
    code, _, err = entry(f"seed={seed}", *FAST)
    assert_short_error(code, err, f"seed={seed}: must be from 0 to 4294967295", "seed=42")
    assert not (tmp_path / "out" / "cache").exists() and not (tmp_path / "out" / "runs").exists()


def test_seed_range_ends_are_accepted(tmp_path):
    from mtlv.options import check_values

    for seed in (0, 2**32 - 1):
        check_values(compose([f"seed={seed}"]))


def _cores() -> int:
    import joblib

    return joblib.cpu_count()


@pytest.mark.parametrize("n_jobs", [0, "below"])
def test_parallel_launcher_n_jobs_joblib_cannot_use(entry, tmp_path, n_jobs):
    """n_jobs=0 was joblib's ValueError after the sweep had loaded the data; below -cores joblib quietly runs one
    worker. Both stop before any folder is made, naming what joblib accepts."""
    value = -_cores() - 1 if n_jobs == "below" else n_jobs
    code, _, err = entry("-m", "arch=gmtl", "hydra/launcher=parallel", f"hydra.launcher.n_jobs={value}", *FAST,
                         "logger=none")
    assert_short_error(code, err, f"hydra.launcher.n_jobs={value}: must be 1 or more",
                       f"from -1 (all {_cores()} cores here) down to -{_cores()}", "hydra.launcher.n_jobs=2")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.yaml"))


def test_n_jobs_joblib_accepts_pass_the_check():
    from mtlv.options import check_values

    for value in (1, 3, -1, -_cores()):
        check_values(compose(["hydra/launcher=parallel", f"hydra.launcher.n_jobs={value}"], return_hydra=True))
        check_values(compose([f"baseline.n_jobs={value}"], config_name="baseline"))
    with pytest.raises(ConfigError, match="baseline.n_jobs=0: must be 1 or more"):
        check_values(compose(["baseline.n_jobs=0"], config_name="baseline"))


def _sparse_terms_table(table, n: int = 60):
    """Every text unique but for the word `pair`, in the even rows only."""
    rows = demo_rows(n)
    for i, row in enumerate(rows):
        row["text"] = f"{'pair ' if i % 2 == 0 else ''}w{i}x v{i}y"
    return table(rows)


def _training_rows(out) -> np.ndarray:
    (split,) = list((out / "cache" / "splits").glob("*.npz"))
    return np.load(split)["train"]


def test_baseline_min_df_above_the_training_documents(entry, table, tmp_path):
    """scikit-learn's "max_df corresponds to < documents than min_df" traceback: now one line naming the number of
    training documents."""
    path = _sparse_terms_table(table)
    code, _, err = entry("dataset=csv", f"dataset.path={path}", "baseline.min_df=1000", "logger=none",
                         module="mtlv.baseline")
    train = _training_rows(tmp_path / "out")
    assert_short_error(code, err, "baseline.min_df=1000", f"there are {len(train)}", "baseline.min_df=2")


def test_baseline_min_df_that_keeps_no_term(entry, table, tmp_path):
    """scikit-learn's "After pruning, no terms remain": one line naming how many training documents the most
    common term is in (here `pair`, counted from the saved split)."""
    path = _sparse_terms_table(table)
    code, _, err = entry("dataset=csv", f"dataset.path={path}", "baseline.min_df=30", "logger=none",
                         module="mtlv.baseline")
    train = _training_rows(tmp_path / "out")
    pairs = int((train % 2 == 0).sum())
    assert 30 < len(train) and pairs < 30  # min_df within the documents, above every term's count
    assert_short_error(code, err, "baseline.min_df=30: no term is in 30", f"of the {len(train)} training documents",
                       f"the most common is in {pairs}")
    code, out, err = entry("dataset=csv", f"dataset.path={path}", f"baseline.min_df={pairs}", "logger=none",
                           module="mtlv.baseline")
    assert code == 0, err



# ----------------------------------------------------------------------------- commands that read a store
def _tree(folder) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("target", ["missing-folder", "empty-folder", "uri-of-empty-folder", "folder-as-uri"])
def test_report_on_a_store_that_does_not_exist_creates_nothing(entry, tmp_path, target):
    """A typo in the path made a new, empty MLflow database there and an empty report (exit 0), which read as
    "no runs yet": now one error line naming the path and the fix, and nothing is created."""
    (tmp_path / "empty").mkdir()
    before = _tree(tmp_path)
    args = {"missing-folder": [f"paths.output_dir={tmp_path}/typo"],
            "empty-folder": [f"paths.output_dir={tmp_path}/empty"],
            "uri-of-empty-folder": [f"tracking_uri=sqlite:///{tmp_path}/empty/mlflow.db", f"out={tmp_path}/report"],
            "folder-as-uri": [f"tracking_uri={tmp_path}/empty", f"out={tmp_path}/report"]}[target]
    code, out, err = entry(*args, module="mtlv.report.__main__")
    where = f"{tmp_path}/empty" if target == "folder-as-uri" else f"{tmp_path}/{'typo' if 'missing' in target else 'empty'}/mlflow.db"
    assert_short_error(code, err, f"there is no MLflow store at {where} (nothing was created)", "tracking_uri=sqlite:///",
                       "paths.output_dir=")
    assert _tree(tmp_path) == before


def test_report_on_a_store_without_runs_says_so_and_leaves_the_store_alone(entry, tmp_path):
    from mtlv import tracking

    uri = tracking.sqlite_uri(tmp_path / "store" / "mlflow.db")
    tracking.check_store(uri)  # a new store, as a training command makes it (tables, no runs)
    before = _tree(tmp_path / "store")
    code, out, err = entry(f"tracking_uri={uri}", f"out={tmp_path}/report", module="mtlv.report.__main__")
    assert code == 0, err
    assert "No finished runs in this store yet" in (tmp_path / "report" / "report.md").read_text()
    assert _tree(tmp_path / "store") == before


def test_predict_and_aggregate_by_run_id_in_a_store_that_does_not_exist(entry, tmp_path):
    store = tmp_path / "nowhere" / "mlflow.db"
    code, _, err = entry("run=0123456789abcdef", "input=-", f"tracking_uri=sqlite:///{store}", module="mtlv.predict")
    assert_short_error(code, err, "run='0123456789abcdef' is neither a folder nor a run id",
                       f"there is no MLflow store at {store}")
    from mtlv.aggregate import main as aggregate

    with pytest.raises(SystemExit) as info:
        aggregate(["0123456789abcdef", "--tracking-uri", f"sqlite:///{store}"])
    assert info.value.code == 2 and f"there is no MLflow store at {store}" in entry.capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


# ----------------------------------------------------------------------------- mtlv.aggregate on what needs none
def test_aggregate_on_a_finished_mtl_cell_says_it_needs_none_and_where_its_result_is(logged_run, capsys):
    """It said "1 of 1 group jobs have not finished ... rerun the sweep" (exit 2) about a finished MTL job."""
    from mtlv.aggregate import main as aggregate

    result = logged_run[0]
    job = Path(result["folder"])
    for target in (job.parent, job):
        capsys.readouterr()
        assert aggregate([str(target)]) == 0
        out = capsys.readouterr().out
        assert "nothing to aggregate" in out and f"Its result is in {job} (result.json, metrics.json)" in out
        assert f"{result['test']['f1_macro']:9.4f}" in out and "have not finished" not in out
    assert not (job.parent / "aggregate.json").exists()


def test_aggregate_on_an_unfinished_mtl_cell_or_a_group_job(tmp_path, capsys):
    from mtlv.aggregate import main as aggregate
    from mtlv.grouping.partition import TaskGrouping

    heads = tmp_path / "mtl-cell"
    TaskGrouping(("a", "b", "c"), ((0, 1, 2),), "heads").save(heads / "groups.yaml")
    (heads / "model").mkdir()
    with pytest.raises(SystemExit) as info:
        aggregate([str(heads)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and f"{heads / 'model'} has no result.json" in err and "rerun the same training" in err
    models = tmp_path / "gmtl-cell"
    for folder in (models, models / "group-01"):
        TaskGrouping(("a", "b", "c"), ((0, 2), (1,)), "models").save(folder / "groups.yaml")
    with pytest.raises(SystemExit) as info:
        aggregate([str(models / "group-01")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and f"one group job of the STL/GMTL cell {models}" in err
    assert f"python -m mtlv.aggregate {models}" in err
