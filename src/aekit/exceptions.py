"""Exception types raised by aekit.

Each subclasses a builtin (``ValueError`` or ``RuntimeError``) so that code
catching the builtin keeps working; catch :class:`AekitError` to handle every
error that aekit raises on purpose.
"""

from sklearn.exceptions import NotFittedError

__all__ = [
    "AekitError",
    "AekitWarning",
    "ConfigError",
    "DataError",
    "ExportError",
    "ModelFileError",
    "NotFittedError",
    "TrainingDivergedError",
]


class AekitError(Exception):
    """Base class of the errors aekit raises for user input and files."""


class ConfigError(AekitError, ValueError):
    """A parameter value is invalid or parameters contradict each other."""


class DataError(AekitError, ValueError):
    """Input data cannot be read or does not fit the model."""


class ModelFileError(AekitError, ValueError):
    """A model folder is missing, damaged, or written by an unsupported version."""


class ExportError(AekitError, RuntimeError):
    """A model cannot be exported, or its exported graph does not match the PyTorch model."""


class TrainingDivergedError(AekitError, RuntimeError):
    """The training loss became NaN or infinite."""


class AekitWarning(UserWarning):
    """A setting or input that works but probably does not do what the user wants."""
