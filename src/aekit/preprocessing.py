"""Feature scaling fitted on the training rows and stored with the model.

Every scaling is stored the same way, as a per-feature ``offset`` and ``scale``
with ``x_scaled = (x - offset) / scale``, so applying and undoing it needs no
knowledge of how it was fitted.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .exceptions import ModelFileError

Scaling = Literal["standard", "minmax", "global-minmax", "none"]
SCALINGS: tuple[str, ...] = ("standard", "minmax", "global-minmax", "none")

# Scalings whose output lies in [0, 1] on the training rows, where a sigmoid output fits.
UNIT_RANGE_SCALINGS = frozenset({"minmax", "global-minmax"})


class Scaler:
    """Per-feature affine scaling.

    Parameters
    ----------
    kind : {"standard", "minmax", "global-minmax", "none"}
        ``"standard"`` subtracts each column's mean and divides by its standard
        deviation; ``"minmax"`` maps each column's training range to [0, 1];
        ``"global-minmax"`` maps the range of all values together to [0, 1], which
        suits pixels; ``"none"`` leaves data unchanged. A constant column gets scale
        1, so it scales to 0 instead of NaN.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.offset_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> Scaler:
        """Learn offset and scale from ``X`` of shape (n_samples, n_features)."""
        values = X.astype(np.float64, copy=False)
        n_features = values.shape[1]

        if self.kind == "standard":
            offset = values.mean(axis=0)
            scale = values.std(axis=0)
        elif self.kind == "minmax":
            offset = values.min(axis=0)
            scale = values.max(axis=0) - offset
        elif self.kind == "global-minmax":
            low, high = float(values.min()), float(values.max())
            offset = np.full(n_features, low)
            scale = np.full(n_features, high - low)
        elif self.kind == "none":
            offset = np.zeros(n_features)
            scale = np.ones(n_features)
        else:
            raise ValueError(f"scaling must be one of {SCALINGS}, got {self.kind!r}.")

        self.offset_ = offset.astype(np.float32)
        self.scale_ = _replace_tiny_scales(scale, offset).astype(np.float32)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Return ``(X - offset) / scale`` as float32."""
        return ((X - self.offset_) / self.scale_).astype(np.float32, copy=False)

    def inverse_transform(self, X_scaled: np.ndarray) -> np.ndarray:
        """Return data in the original units."""
        return (X_scaled * self.scale_ + self.offset_).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the fitted state as JSON-ready values (float32 values survive exactly)."""
        return {
            "kind": self.kind,
            "offset": [float(v) for v in self.offset_],
            "scale": [float(v) for v in self.scale_],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any], n_features: int) -> Scaler:
        """Rebuild a fitted scaler, checking that it matches ``n_features``."""
        try:
            scaler = cls(str(state["kind"]))
            scaler.offset_ = np.asarray(state["offset"], dtype=np.float32)
            scaler.scale_ = np.asarray(state["scale"], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"the preprocessing state in the model config is invalid: {err}.") from err

        for name, values in (("offset", scaler.offset_), ("scale", scaler.scale_)):
            if values.shape != (n_features,):
                raise ModelFileError(
                    f"the preprocessing {name} has shape {values.shape}, but the model has "
                    f"{n_features} features; the model config is damaged."
                )
        if not (np.all(np.isfinite(scaler.offset_)) and np.all(scaler.scale_ > 0)):
            raise ModelFileError("the preprocessing state holds non-finite or non-positive scales.")
        return scaler


def _replace_tiny_scales(scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Use 1 for constant columns, whose scale would otherwise divide by zero.

    A scale below ten machine epsilons of the column's magnitude counts as zero, so
    float noise in a constant column is not blown up into large values.
    """
    tiny = 10 * np.finfo(np.float32).eps * np.maximum(np.abs(offset), 1.0)
    return np.where(scale < tiny, 1.0, scale)


class RunningStats:
    """Per-feature count, mean, sum of squared deviations, minimum and maximum, updated
    chunk by chunk in float64.

    Chunks and partial results merge with the parallel update of Chan, Golub & LeVeque,
    "Algorithms for computing the sample variance", The American Statistician 37 (1983).
    It is exact in exact arithmetic and stable in floating point, so a one-pass fit
    over a stream gives the same statistics as a fit over the whole array, up to
    rounding.
    """

    def __init__(self, n_features: int) -> None:
        self.count = 0
        self.mean = np.zeros(n_features)
        self.m2 = np.zeros(n_features)
        self.minimum = np.full(n_features, np.inf)
        self.maximum = np.full(n_features, -np.inf)

    def update(self, X: np.ndarray) -> RunningStats:
        """Add the rows of ``X`` (n_samples, n_features)."""
        if len(X) == 0:
            return self
        values = X.astype(np.float64, copy=False)
        chunk = RunningStats(values.shape[1])
        chunk.count = len(values)
        chunk.mean = values.mean(axis=0)
        chunk.m2 = np.square(values - chunk.mean).sum(axis=0)
        chunk.minimum = values.min(axis=0)
        chunk.maximum = values.max(axis=0)
        return self.merge(chunk)

    def merge(self, other: RunningStats) -> RunningStats:
        """Fold ``other``'s rows into these statistics (Chan's pairwise update)."""
        if other.count == 0:
            return self
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (other.count / total)
        self.m2 = self.m2 + other.m2 + np.square(delta) * (self.count * other.count / total)
        self.count = total
        self.minimum = np.minimum(self.minimum, other.minimum)
        self.maximum = np.maximum(self.maximum, other.maximum)
        return self

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation (``ddof=0``), as ``numpy.std`` computes by default."""
        return np.sqrt(self.m2 / max(self.count, 1))

    def to_scaler(self, kind: str) -> Scaler:
        """Return the fitted :class:`Scaler` of ``kind`` that these rows define."""
        if self.count == 0:
            raise ValueError("cannot fit a scaler on 0 rows.")
        n_features = len(self.mean)
        if kind == "standard":
            offset, scale = self.mean, self.std
        elif kind == "minmax":
            offset, scale = self.minimum, self.maximum - self.minimum
        elif kind == "global-minmax":
            low, high = float(self.minimum.min()), float(self.maximum.max())
            offset, scale = np.full(n_features, low), np.full(n_features, high - low)
        elif kind == "none":
            offset, scale = np.zeros(n_features), np.ones(n_features)
        else:
            raise ValueError(f"scaling must be one of {SCALINGS}, got {kind!r}.")
        scaler = Scaler(kind)
        scaler.offset_ = offset.astype(np.float32)
        scaler.scale_ = _replace_tiny_scales(scale, offset).astype(np.float32)
        return scaler
