"""How an error reaches the user: a user's mistake is one `error:` line and exit code 2 (unwrapped from
Hydra's instantiate, in every entry point, before any data is tokenized), a bug keeps its traceback, and a
failed job of a sweep is listed by the sweeper instead of ending the sweep."""
from __future__ import annotations

import sys

import pandas as pd
import pytest
from reliability._support import FAST, assert_short_error

from mtlv.errors import ConfigError, DataError, ModelLoadError, MTLVError, report_and_exit, user_error


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


# ----------------------------------------------------------------------------- a job's error in a sweep
def test_a_job_error_in_a_sweep_is_listed_by_the_sweeper(entry, tmp_path):
    """In a sweep job the wrapper re-raises, so the sweeper runs the other jobs and lists the failures;
    it must not end the whole sweep at the first job (with `error:` for that job alone)."""
    code, _, err = entry("-m", "dataset=csv", f"dataset.path={tmp_path}/a.csv,{tmp_path}/b.csv", *FAST, "logger=none")
    assert_short_error(code, err, "error: 2 of 2 jobs failed", f"DataError: data file {tmp_path}/a.csv not found",
                       f"DataError: data file {tmp_path}/b.csv not found")


def test_a_job_error_in_a_clustered_sweep_is_listed_too(entry, tmp_path):
    """The same for GMHL cells, whose groupings and model keys the sweeper computes before launching
    (precompute_groupings, reuse_models): a missing file is left to each job, which lists it."""
    code, _, err = entry("-m", "arch=gmhl", "clustering=cooccurrence", "clustering.k=2", "dataset=csv",
                         f"dataset.path={tmp_path}/a.csv,{tmp_path}/b.csv", *FAST, "logger=none",
                         "hydra/launcher=parallel", "hydra.launcher.n_jobs=2")
    assert_short_error(code, err, "error: 2 of 2 jobs failed", f"{tmp_path}/a.csv not found",
                       f"{tmp_path}/b.csv not found")
