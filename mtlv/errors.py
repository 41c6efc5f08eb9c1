"""Errors a user can act on: each names the file, field or option at fault and the fix."""


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
    """For entry points: print `error: <message>` to stderr and exit with `code` when `err` is (or
    wraps) an MTLVError; re-raise anything else, and everything when HYDRA_FULL_ERROR=1."""
    import sys

    user = user_error(err)
    if user is None or full_errors():
        raise err
    print(f"error: {user}", file=sys.stderr, flush=True)
    raise SystemExit(code)
