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
