"""Thresholds on anomaly scores and conformal p-values.

Scores here are reconstruction errors: higher means more anomalous, and a row is
flagged as an outlier when its score is strictly above the threshold.

A threshold comes from one of three rules:

- ``"contamination"``: the share of training rows to flag. The threshold is the
  ``1 - contamination`` quantile of the training scores, interpolated linearly
  (``numpy.percentile``'s default, which PyOD uses too), so a contamination of 0
  gives the highest training score and flags no training row.
- ``"fpr"``: a target false-positive rate on new rows like the training rows. Each
  row gets a conformal p-value from scores of calibration rows the model never
  trained on, and rows with a p-value at most the target are flagged. For
  exchangeable inliers the flagged share is at most the target in expectation
  (Vovk, Gammerman & Shafer, "Algorithmic Learning in a Random World", 2005;
  Bates et al., "Testing for outliers with conformal p-values", Annals of
  Statistics 51, 2023).
- ``"threshold"``: an explicit score.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Literal

import numpy as np

from .exceptions import AekitWarning, ConfigError

ThresholdMethod = Literal["contamination", "fpr", "threshold"]
THRESHOLD_METHODS: tuple[str, ...] = ("contamination", "fpr", "threshold")


def check_contamination(contamination: object, *, maximum: float = 0.5, allow_zero: bool = True) -> float:
    """Return ``contamination`` as a float after checking it is a share of rows in range."""
    low = "[0" if allow_zero else "(0"
    if (
        isinstance(contamination, bool)
        or not isinstance(contamination, numbers.Real)
        or math.isnan(contamination)
        or not (0 <= contamination <= maximum)
        or (contamination == 0 and not allow_zero)
    ):
        raise ConfigError(
            f"contamination must be a number in {low}, {maximum}], the share of training rows "
            f"to flag as outliers, got {contamination!r}."
        )
    return float(contamination)


def check_fpr(fpr: object) -> float:
    """Return the target false-positive rate as a float after checking it is in (0, 1)."""
    if isinstance(fpr, bool) or not isinstance(fpr, numbers.Real) or not 0 < fpr < 1:
        raise ConfigError(
            f"fpr must be a number in (0, 1), the target share of normal rows flagged as "
            f"outliers, got {fpr!r}; for example fpr=0.01."
        )
    return float(fpr)


def check_threshold(threshold: object) -> float:
    """Return an explicit score threshold as a float after checking it is a finite number."""
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not math.isfinite(threshold):
        raise ConfigError(f"threshold must be a finite number (a reconstruction error), got {threshold!r}.")
    return float(threshold)


def resolve_threshold_rule(
    contamination: object, fpr: object, threshold: object
) -> tuple[ThresholdMethod, float]:
    """Pick the rule from the three parameters: ``threshold``, then ``fpr``, then ``contamination``.

    ``fpr`` and ``threshold`` are ``None`` unless used; setting both is ambiguous and
    raises ``ConfigError``.
    """
    if fpr is not None and threshold is not None:
        raise ConfigError(
            f"fpr={fpr!r} and threshold={threshold!r} are both set, but only one threshold rule "
            "can apply; set the other to None."
        )
    if threshold is not None:
        return "threshold", check_threshold(threshold)
    if fpr is not None:
        return "fpr", check_fpr(fpr)
    return "contamination", check_contamination(contamination)


def contamination_threshold(scores: np.ndarray, contamination: float) -> float:
    """Score above which a share ``contamination`` of ``scores`` lies.

    Rows scoring strictly above the result are outliers, so 0 flags none of ``scores``.
    """
    if contamination == 0:
        return float(np.max(scores))
    return float(np.percentile(scores, 100 * (1 - contamination)))


def conformal_threshold(calibration_scores: np.ndarray, fpr: float) -> float:
    """Score above which a row's conformal p-value is at most ``fpr``.

    With ``n`` calibration scores and ``k = floor(fpr * (n + 1))``, a row's p-value is
    at most ``fpr`` exactly when its score is above the ``k``-th largest calibration
    score. When ``k`` is 0 no row can reach the target, the threshold is infinite and
    an ``AekitWarning`` says how many calibration rows the target needs.
    """
    n = len(calibration_scores)
    # The small tolerance keeps fpr * (n + 1) that is an integer in exact arithmetic,
    # such as 0.1 * 10, from rounding down to the integer below.
    k = math.floor(fpr * (n + 1) + 1e-9)
    if k == 0:
        needed = math.ceil(1 / fpr) - 1
        warnings.warn(
            f"fpr={fpr} cannot be reached with {n} calibration rows, so no row will be flagged; "
            f"it needs at least {needed} calibration rows. Train on more rows, raise "
            "calibration_fraction, or raise fpr.",
            AekitWarning,
            stacklevel=3,
        )
        return math.inf
    descending = np.sort(np.asarray(calibration_scores, dtype=np.float64))[::-1]
    return float(descending[k - 1])


def conformal_p_values(scores: np.ndarray, calibration_scores: np.ndarray) -> np.ndarray:
    """Conformal p-value of each score: ``(1 + #{calibration >= score}) / (n + 1)``.

    The +1 counts the row itself, which makes the p-value valid: for a row exchangeable
    with the calibration rows, ``P(p <= alpha) <= alpha`` for every ``alpha``.
    """
    ordered = np.sort(np.asarray(calibration_scores, dtype=np.float64))
    n = len(ordered)
    at_least = n - np.searchsorted(ordered, np.asarray(scores, dtype=np.float64), side="left")
    return (1.0 + at_least) / (n + 1.0)
