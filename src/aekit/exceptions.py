"""Exception types raised by aekit.

Each subclasses a builtin (``ValueError`` or ``RuntimeError``) so that code
catching the builtin keeps working; catch :class:`AekitError` to handle every
error that aekit raises on purpose.
"""

from __future__ import annotations

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
    """The training loss became NaN or infinite.

    ``epoch`` and ``batch`` (both 1-based, None when unknown) locate the first
    non-finite loss. ``last_good_epoch`` is the epoch whose weights the trainer put
    back into the model before raising (0 for the initial weights).
    """

    def __init__(
        self,
        message: str,
        *,
        epoch: int | None = None,
        batch: int | None = None,
        last_good_epoch: int | None = None,
    ) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.last_good_epoch = last_good_epoch


class AekitWarning(UserWarning):
    """A setting or input that works but probably does not do what the user wants."""
