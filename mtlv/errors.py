"""Errors a user can act on: each names the file, field or option at fault and the fix."""
from __future__ import annotations

import functools
from typing import Callable, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class MTLVError(Exception):
    """Base class for every error MTLV raises on purpose."""


class ConfigError(MTLVError, ValueError):
    """A config option (or combination of options) is invalid."""


class DataError(MTLVError, ValueError):
    """A dataset file is missing, corrupt or not in the expected layout."""


class ModelLoadError(MTLVError, OSError):
    """An encoder or tokenizer could not be loaded."""


class TrackingError(MTLVError, RuntimeError):
    """The MLflow tracking store cannot be reached or written."""


class MissingResultsError(MTLVError, RuntimeError):
    """Aggregation was asked for while group jobs are still missing."""


class JobsFailedError(MTLVError, RuntimeError):
    """Some jobs of a sweep failed (the others finished and are kept)."""


class SubmissionError(MTLVError, RuntimeError):
    """The cluster refused to queue a sweep's jobs (sbatch failed); nothing of this launch ran."""


def user_error(err: BaseException | None) -> MTLVError | None:
    """The MTLVError behind `err`, if any: Hydra's instantiate wraps what a `_target_` raises in an
    InstantiationException (`raise ... from err`), so follow the explicit cause chain."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, MTLVError):
            return err
        seen.add(id(err))
        err = err.__cause__
    return None


def full_errors() -> bool:
    """HYDRA_FULL_ERROR=1: show complete tracebacks, also for errors a user can act on."""
    import os

    return os.environ.get("HYDRA_FULL_ERROR", "").strip() == "1"


def report_and_exit(err: BaseException, code: int = 2) -> None:
    """Print `error: <message>` to stderr and exit with `code` when `err` is (or wraps) an
    MTLVError; re-raise anything else (a bug keeps its traceback), and everything when
    HYDRA_FULL_ERROR=1."""
    import sys

    user = user_error(err)
    if user is None or full_errors():
        raise err
    print(f"error: {user}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def in_sweep_job() -> bool:
    """Inside one job of a Hydra multirun (not the sweeper that launches the jobs)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return False
    hydra = HydraConfig.get()
    return hydra.mode == RunMode.MULTIRUN and hydra.job.get("num") is not None


def entry_point(func: Callable[P, R]) -> Callable[P, R]:
    """The one error wrapper of every entry point (train, cluster, baseline, predict, aggregate,
    report, the sweeper, the pre-run checks); under @hydra.main it wraps the task function.

    An MTLVError, also one that Hydra's instantiate wrapped in an InstantiationException, ends
    the process with one `error: <message>` line on stderr and exit code 2. Anything else (a bug)
    keeps its traceback, and so does everything with HYDRA_FULL_ERROR=1. In one job of a sweep the
    error is re-raised (unwrapped) instead, so that the sweeper lists it with the other failed
    jobs and the finished ones are kept."""

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except Exception as err:
            if in_sweep_job():
                user = user_error(err)
                if user is None or user is err or full_errors():
                    raise
                raise user from None
            report_and_exit(err)
            raise

    return run
