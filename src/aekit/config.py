"""Training settings, validated once when built."""

from __future__ import annotations

import dataclasses
import math
import numbers

from .exceptions import ConfigError


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How a model is trained.

    The estimators build one from their flat keyword parameters inside ``fit``.
    """

    max_epochs: int = 200
    batch_size: int = 256
    learning_rate: float = 1e-3
    validation_fraction: float = 0.2
    early_stopping: bool = True
    patience: int = 10

    def __post_init__(self) -> None:
        _check_int("max_epochs", self.max_epochs, minimum=1)
        _check_int("batch_size", self.batch_size, minimum=1)
        _check_int("patience", self.patience, minimum=1)
        if not _is_real(self.learning_rate) or not 0 < self.learning_rate < math.inf:
            raise ConfigError(f"learning_rate must be a positive number, got {self.learning_rate!r}.")
        if not _is_real(self.validation_fraction) or not 0 <= self.validation_fraction < 1:
            raise ConfigError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}; "
                "use 0 to train on every row without validation."
            )
        if not isinstance(self.early_stopping, bool):
            raise ConfigError(f"early_stopping must be True or False, got {self.early_stopping!r}.")


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)


def _check_int(name: str, value: object, *, minimum: int) -> None:
    # numbers.Integral also admits numpy integers, which parameter grids often hold.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}.")
