"""Conversion of user input to float arrays, with errors that name the problem."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..exceptions import DataError

# How many offending columns or cells an error message lists before summarising.
_MAX_LISTED = 5


def to_float_array(X: object, *, name: str = "X") -> tuple[np.ndarray, list[str] | None]:
    """Convert ``X`` to a float32 array of shape (n_samples, ...) with at least 2 dimensions.

    Returns the array and, for a DataFrame whose column names are all strings, the
    column names (scikit-learn's ``feature_names_in_`` convention); otherwise ``None``.

    Raises
    ------
    DataError
        If ``X`` is sparse, has fewer than 2 dimensions, no rows, no features, or
        non-numeric values.
    """
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise DataError(
            f"{name} is a sparse matrix, which aekit does not accept; convert it with "
            f"{name}.toarray() if it fits in memory."
        )

    if isinstance(X, pd.DataFrame):
        array, feature_names = _frame_to_array(X, name)
    else:
        array, feature_names = _array_to_float(X, name), None

    if array.ndim < 2:
        raise DataError(
            f"{name} must be 2-D (n_samples, n_features) or an image array (n_samples, ...), "
            f"got shape {array.shape}. Reshape your data with {name}.reshape(-1, 1) for a single "
            f"feature or {name}.reshape(1, -1) for a single sample."
        )
    # The wording of these two follows scikit-learn's check_array, which its tests look for.
    if array.shape[0] == 0:
        raise DataError(
            f"{name} has 0 sample(s) (shape={array.shape}) while a minimum of 1 is required; "
            "pass at least one row."
        )
    if int(np.prod(array.shape[1:])) == 0:
        raise DataError(
            f"{name} has 0 feature(s) (shape={array.shape}) while a minimum of 1 is required; "
            "pass at least one column."
        )
    return array, feature_names


def _frame_to_array(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, list[str] | None]:
    check_numeric_columns(frame, name)
    columns = list(frame.columns)
    feature_names = [str(c) for c in columns] if all(isinstance(c, str) for c in columns) else None
    with np.errstate(over="ignore"):
        array = frame.to_numpy(dtype=np.float32, na_value=np.nan)
    _check_float32_range(lambda: frame.to_numpy(dtype=np.float64, na_value=np.nan), array, name)
    return array, feature_names


def check_numeric_columns(frame: pd.DataFrame, name: str = "X") -> None:
    """Raise ``DataError`` if ``frame`` has categorical (non-numeric) columns.

    This is the one place that decides which column types the numeric-only estimators
    accept. A table of categorical columns only gets its own message, because dropping
    them leaves nothing.
    """
    non_numeric = [
        column
        for column in frame.columns
        if not (pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]))
    ]
    if not non_numeric:
        return

    described = ", ".join(f"{column!r} ({frame[column].dtype})" for column in non_numeric[:_MAX_LISTED])
    more = f" and {len(non_numeric) - _MAX_LISTED} more" if len(non_numeric) > _MAX_LISTED else ""
    if len(non_numeric) == frame.shape[1]:
        raise DataError(
            f"{name} has only categorical (non-numeric) columns: {described}{more}; this estimator "
            "takes numeric columns only. aekit.AutoEncoder and aekit.AnomalyDetector take "
            "categorical columns, or encode them as numbers first, for example one-hot columns "
            "with pandas.get_dummies."
        )
    raise DataError(
        f"{name} has non-numeric columns {described}{more}; this estimator takes numeric columns "
        "only. Use aekit.AutoEncoder or aekit.AnomalyDetector, which take categorical columns, "
        "or drop or encode them as numbers before training."
    )


def _array_to_float(X: object, name: str) -> np.ndarray:
    try:
        array = np.asarray(X)
    except ValueError as err:
        # Nested lists of different lengths do not form an array.
        raise DataError(f"{name} cannot be read as an array: {err}; pass rows of equal length.") from err
    if np.issubdtype(array.dtype, np.complexfloating):
        raise DataError(
            f"Complex data not supported: {name} has complex values (dtype {array.dtype}); "
            "pass real numbers, for example the real and imaginary parts as separate columns."
        )
    if array.dtype == np.float32:
        return array
    try:
        with np.errstate(over="ignore"):
            converted = array.astype(np.float32)
    except (TypeError, ValueError) as err:
        raise DataError(
            f"{name} has non-numeric values (dtype {array.dtype}): {err}; convert them to numbers "
            "first."
        ) from err
    _check_float32_range(lambda: array.astype(np.float64), converted, name)
    return converted


def _check_float32_range(source: Callable[[], np.ndarray], converted: np.ndarray, name: str) -> None:
    """Raise ``DataError`` where a finite value became infinite in float32.

    ``source`` returns the values in float64. It is called only when ``converted``
    contains an infinity, which is rare, so the common case makes no float64 copy.
    """
    overflowed = np.isinf(converted)
    if not overflowed.any():
        return
    originals = source()[overflowed]
    finite = np.flatnonzero(np.isfinite(originals))
    if len(finite) == 0:
        return

    index = tuple(int(i) for i in np.argwhere(overflowed)[finite[0]])
    where = f"row {index[0]} column {index[1]}" if len(index) == 2 else f"index {index}"
    raise DataError(
        f"{name} has {len(finite)} value(s) beyond float32's range (about 3.4e38 in magnitude), "
        f"the first at {where} ({originals[finite[0]]:g}); aekit computes in float32, so rescale "
        "those values, for example by changing their units."
    )


def column_label(index: int, feature_names: Sequence[str] | None) -> str:
    """Name a column for messages: its name when known, else its 0-based position."""
    if feature_names is not None:
        return repr(feature_names[index])
    return str(index)


def check_array_finite(
    X: np.ndarray, feature_names: Sequence[str] | None, *, when: str, name: str = "X"
) -> None:
    """Raise ``DataError`` if ``X`` (2-D) holds NaN or infinity.

    ``when`` is ``"training"`` (the message lists columns and counts) or any other
    step such as ``"scoring"`` (the message lists row and column positions).
    """
    finite = np.isfinite(X)
    if finite.all():
        return

    if when == "training":
        counts = (~finite).sum(axis=0)
        bad_columns = np.flatnonzero(counts)
        listed = ", ".join(
            f"{column_label(j, feature_names)} ({counts[j]} value{'s' if counts[j] > 1 else ''})"
            for j in bad_columns[:_MAX_LISTED]
        )
        more = f" and {len(bad_columns) - _MAX_LISTED} more" if len(bad_columns) > _MAX_LISTED else ""
        raise DataError(
            f"{name} contains NaN or infinite values in column {listed}{more}; drop or fill "
            "those values before training."
        )

    rows, cols = np.nonzero(~finite)
    listed = ", ".join(
        f"row {r} column {column_label(c, feature_names)}" for r, c in zip(rows[:_MAX_LISTED], cols[:_MAX_LISTED])
    )
    more = f" and {len(rows) - _MAX_LISTED} more" if len(rows) > _MAX_LISTED else ""
    raise DataError(
        f"{name} contains NaN or infinite values at {listed}{more}; drop or fill those values "
        f"before {when}."
    )


def check_scores_finite(errors: np.ndarray) -> np.ndarray:
    """Return per-sample reconstruction ``errors``, or raise ``DataError`` naming the rows
    whose error is NaN or infinite, so that no caller ever ranks a NaN score."""
    bad_rows = np.flatnonzero(~np.isfinite(errors))
    if len(bad_rows) == 0:
        return errors

    listed = ", ".join(str(r) for r in bad_rows[:_MAX_LISTED])
    more = f" and {len(bad_rows) - _MAX_LISTED} more" if len(bad_rows) > _MAX_LISTED else ""
    raise DataError(
        f"X gives a non-finite reconstruction error at row {listed}{more}; those rows' values are "
        "too far outside the training data's range for float32 arithmetic. Check their units."
    )
