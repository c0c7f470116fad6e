"""Column schema of a table: which columns are numeric and which categorical, their
category lists and scaling, inferred at fit and enforced at every later call.

A table is encoded for the model as one float32 matrix with a column per table column:
numeric columns standardised, categorical columns as the index of their category slot.
NaN marks a missing cell of either kind. A categorical column's slots are its kept
categories, then an "other" slot when rare values were grouped (``max_categories``),
then an "unknown" slot for values never seen in training.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ConfigError, DataError

logger = logging.getLogger(__name__)

NUMERIC = "numeric"
CATEGORICAL = "categorical"
IMPUTE_MODES: tuple[None, str, str] = (None, "mean", "model")
# Labels of the grouped-rare-values and never-seen slots in decoded tables.
OTHER_LABEL = "<other>"
UNKNOWN_LABEL = "<unknown>"
DEFAULT_MAX_CATEGORIES = 100
# Rare values grouped into "other" that the schema lists, so that later calls can tell
# a grouped value from one never seen. Past this many, any value outside the kept
# categories counts as "other".
MAX_LISTED_RARE_VALUES = 10_000
# How many offending columns an error message lists before summarising.
_MAX_LISTED = 5


@dataclasses.dataclass
class ColumnSchema:
    """One column: its name, kind and original dtype, and how it is encoded.

    Numeric columns have ``mean`` and ``std`` (of the present training values).
    Categorical columns have ``categories`` (the kept labels, most frequent first
    when capped, otherwise sorted), ``rare_values`` grouped into the "other" slot
    (``has_other``), ``mode`` (the most frequent slot) and ``entropy`` (of the
    training slot frequencies, in nats).
    """

    name: str
    kind: str
    dtype: str
    mean: float = 0.0
    std: float = 1.0
    categories: list[Any] = dataclasses.field(default_factory=list)
    has_other: bool = False
    rare_values: list[Any] | None = None
    mode: int = 0
    entropy: float = 0.0

    @property
    def n_slots(self) -> int:
        """Category slots of a categorical column: categories, "other" (if any), "unknown"."""
        return len(self.categories) + int(self.has_other) + 1

    @property
    def other_slot(self) -> int | None:
        return len(self.categories) if self.has_other else None

    @property
    def unknown_slot(self) -> int:
        return self.n_slots - 1

    def slot_labels(self) -> list[Any]:
        return [*self.categories, *([OTHER_LABEL] if self.has_other else []), UNKNOWN_LABEL]


@dataclasses.dataclass
class TableSchema:
    """The columns a model was trained on, in training order.

    ``from_frame`` is True when the training data was a DataFrame, so that outputs
    come back as DataFrames with the same column names and dtypes. ``n_rows`` counts
    the rows the schema was inferred from.
    """

    columns: list[ColumnSchema]
    from_frame: bool = True
    n_rows: int = 0

    # --- inference of the schema --------------------------------------------------------

    @classmethod
    def infer(
        cls, X: Any, categorical_columns: Sequence[Any] | None = None, max_categories: int = DEFAULT_MAX_CATEGORIES
    ) -> TableSchema:
        """Infer the schema of training data ``X`` (a DataFrame or a 2-D array).

        A column is categorical when its dtype is object, string, category or bool, or
        when it is named (or, for arrays, indexed) in ``categorical_columns``.
        """
        check_max_categories(max_categories)
        frame, from_frame = as_frame(X)
        declared = _declared_columns(frame, categorical_columns)

        columns = []
        for name in frame.columns:
            series = frame[name]
            if name in declared or is_categorical_dtype(series):
                columns.append(_infer_categorical(name, series, max_categories))
            else:
                columns.append(_infer_numeric(name, series))
        return cls(columns, from_frame, len(frame))

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def numeric_positions(self) -> list[int]:
        return [j for j, column in enumerate(self.columns) if column.kind == NUMERIC]

    @property
    def categorical_positions(self) -> list[int]:
        return [j for j, column in enumerate(self.columns) if column.kind == CATEGORICAL]

    def cardinalities(self) -> tuple[int, ...]:
        """Slots per column: 0 for a numeric column."""
        return tuple(column.n_slots if column.kind == CATEGORICAL else 0 for column in self.columns)

    # --- enforcement ----------------------------------------------------------------------

    def align(self, X: Any) -> pd.DataFrame:
        """Return ``X`` as a DataFrame with the training columns in training order.

        Columns in another order are reordered by name. Missing or unexpected
        columns, and numeric columns that are no longer numeric, raise ``DataError``
        with the list of offending columns.
        """
        if isinstance(X, pd.DataFrame) and self.from_frame:
            frame = X.rename(columns=str)
            missing = [name for name in self.names if name not in frame.columns]
            extra = [name for name in frame.columns if name not in self.names]
            if missing or extra:
                problems = [f"{what} {_listed(names)}" for what, names in (("missing", missing), ("unexpected", extra)) if names]
                raise DataError(
                    f"X's columns do not match the training columns: {', '.join(problems)}; pass the "
                    f"{len(self.names)} columns the model was trained on (drop extra columns such as ids "
                    "or labels first)."
                )
            if list(frame.columns) != self.names:
                logger.debug("reordering X's columns by name to the training order")
                frame = frame[self.names]
        else:
            frame, _ = as_frame(X)
            if frame.shape[1] != len(self.columns):
                raise DataError(
                    f"X has {frame.shape[1]} columns, but the model was trained on {len(self.columns)} "
                    f"({_listed(self.names)}); pass data with the training columns."
                )
            frame.columns = self.names

        changed = [
            f"{column.name!r} (numeric {column.dtype} at fit, now {frame[column.name].dtype})"
            for column in self.columns
            if column.kind == NUMERIC and not _is_numeric(frame[column.name])
        ]
        if changed:
            raise DataError(
                f"X has non-numeric values in numeric columns {_listed(changed, quote=False)}; pass "
                "numbers there, as in the training data."
            )
        return frame

    def encode(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Encode an aligned frame for the model.

        Returns the float32 matrix (n_samples, n_columns), NaN where a cell is
        missing, and a boolean matrix marking categorical cells whose value was
        never seen in training (encoded as the "unknown" slot).
        """
        encoded = np.empty(frame.shape, dtype=np.float32)
        unseen = np.zeros(frame.shape, dtype=bool)
        for j, column in enumerate(self.columns):
            series = frame.iloc[:, j]
            if column.kind == NUMERIC:
                values = pd.to_numeric(series).to_numpy(dtype=np.float64, na_value=np.nan)
                if np.isinf(values).any():
                    rows = np.flatnonzero(np.isinf(values))[:_MAX_LISTED].tolist()
                    raise DataError(
                        f"X has infinite values in column {column.name!r} (rows {rows}); pass finite "
                        "numbers or leave the cells empty."
                    )
                encoded[:, j] = (values - column.mean) / column.std
            else:
                encoded[:, j], unseen[:, j] = _category_slots(column, series)
        return encoded, unseen

    def missing_message(self, encoded: np.ndarray, when: str) -> str | None:
        """Describe the missing cells of ``encoded`` for an error, or return None if there are none."""
        counts = np.isnan(encoded).sum(axis=0)
        bad = np.flatnonzero(counts)
        if not len(bad):
            return None
        listed = ", ".join(f"{self.columns[j].name!r} ({counts[j]})" for j in bad[:_MAX_LISTED])
        more = f" and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
        return (
            f"X has missing values (NaN) in columns {listed}{more} at {when}; set impute='model' to "
            "train with them masked and fill them from the other columns, impute='mean' to fill "
            "them with training means and modes, or drop them."
        )

    def fill_means(self, encoded: np.ndarray) -> np.ndarray:
        """Fill missing cells with the training mean (0 once standardised) or most frequent category."""
        filled = encoded.copy()
        for j, column in enumerate(self.columns):
            missing = np.isnan(filled[:, j])
            filled[missing, j] = 0.0 if column.kind == NUMERIC else column.mode
        return filled

    # --- decoding -------------------------------------------------------------------------

    def decode(self, numeric: np.ndarray, slots: np.ndarray) -> pd.DataFrame:
        """Build a table in the original units from standardised numeric values
        (n, n_numeric) and category slots (n, n_categorical), with the training dtypes."""
        data: dict[str, Any] = {}
        numeric_iter = iter(range(numeric.shape[1]))
        slot_iter = iter(range(slots.shape[1]))
        for column in self.columns:
            if column.kind == NUMERIC:
                values = numeric[:, next(numeric_iter)].astype(np.float64) * column.std + column.mean
                data[column.name] = restore_numeric_dtype(values, column.dtype)
            else:
                labels = np.asarray(column.slot_labels(), dtype=object)
                data[column.name] = _restore_categorical_dtype(labels[slots[:, next(slot_iter)]], column)
        return pd.DataFrame(data)

    def to_frame(self, frame: pd.DataFrame) -> Any:
        """Return a decoded table as the caller passed it: a DataFrame, or an array when
        the model was fitted on an array."""
        return frame if self.from_frame else frame.to_numpy(dtype=np.float32)

    # --- model files ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_frame": self.from_frame,
            "n_rows": self.n_rows,
            "columns": [dataclasses.asdict(c) for c in self.columns],
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TableSchema:
        columns = [ColumnSchema(**column) for column in values["columns"]]
        return cls(columns, bool(values["from_frame"]), int(values.get("n_rows", 0)))


# --- helpers -----------------------------------------------------------------------------


def check_max_categories(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
        raise ConfigError(f"max_categories must be an integer >= 2, got {value!r}.")


def check_impute(value: object) -> None:
    if value not in IMPUTE_MODES:
        raise ConfigError(f"impute must be None, 'mean' or 'model'; got {value!r}.")


def as_frame(X: Any) -> tuple[pd.DataFrame, bool]:
    """Return ``X`` as a DataFrame with string column names, and whether it was one."""
    if isinstance(X, pd.DataFrame):
        return X.rename(columns=str), True
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise DataError("X is a sparse matrix, which aekit does not accept; convert it with X.toarray().")
    array = np.asarray(X)
    if array.ndim != 2:
        raise DataError(
            f"categorical columns and missing values need a table of shape (n_samples, n_features), "
            f"got shape {array.shape}."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"X has shape {array.shape}; at least 1 sample and 1 feature are required.")
    return pd.DataFrame(array, columns=[f"x{j}" for j in range(array.shape[1])]), False


def is_categorical_dtype(series: pd.Series) -> bool:
    """Return whether a column's dtype makes it categorical: object, string, category or bool."""
    dtype = series.dtype
    return (
        pd.api.types.is_bool_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def _is_numeric(series: pd.Series) -> bool:
    """Return whether a column is numeric: a number dtype, or objects that are all numbers."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return True
    if pd.api.types.is_object_dtype(series.dtype):
        present = series.dropna()
        return all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in present)
    return False


def _declared_columns(frame: pd.DataFrame, categorical_columns: Sequence[Any] | None) -> set[str]:
    if categorical_columns is None:
        return set()
    if isinstance(categorical_columns, (str, bytes)) or not isinstance(categorical_columns, Sequence):
        raise ConfigError(
            f"categorical_columns must be a list of column names (or positions) or None, got "
            f"{categorical_columns!r}."
        )
    names = list(frame.columns)
    declared = set()
    unknown = []
    for entry in categorical_columns:
        if isinstance(entry, numbers.Integral) and not isinstance(entry, bool) and str(entry) not in names:
            if 0 <= entry < len(names):
                declared.add(names[entry])
            else:
                unknown.append(entry)
        elif str(entry) in names:
            declared.add(str(entry))
        else:
            unknown.append(entry)
    if unknown:
        raise ConfigError(
            f"categorical_columns names columns that X does not have: {unknown!r}; X's columns are "
            f"{_listed(names)}."
        )
    return declared


def _infer_numeric(name: str, series: pd.Series) -> ColumnSchema:
    if not _is_numeric(series):
        raise DataError(f"column {name!r} has dtype {series.dtype} but is not numeric; declare it categorical.")
    values = pd.to_numeric(series).to_numpy(dtype=np.float64, na_value=np.nan)
    present = values[np.isfinite(values)]
    mean = float(present.mean()) if len(present) else 0.0
    std = float(present.std()) if len(present) else 1.0
    # A constant (or empty) column keeps scale 1, so it maps to 0 instead of dividing by 0.
    if not math.isfinite(std) or std < 1e-8 * max(1.0, abs(mean)):
        std = 1.0
    return ColumnSchema(name=name, kind=NUMERIC, dtype=str(series.dtype), mean=mean, std=std)


def _infer_categorical(name: str, series: pd.Series, max_categories: int) -> ColumnSchema:
    counts = series.dropna().value_counts(sort=False)
    counts = counts.iloc[_stable_order(counts)]
    rare_values: list[Any] | None = None
    if len(counts) > max_categories:
        # The most frequent values keep their own slot; the rest share "other".
        counts = counts.sort_values(ascending=False, kind="stable")
        kept, rare = counts.iloc[: max_categories - 1], counts.iloc[max_categories - 1 :]
        rare_list = [_json_value(v) for v in rare.index]
        rare_values = rare_list if len(rare_list) <= MAX_LISTED_RARE_VALUES else None
        slot_counts = np.append(kept.to_numpy(), rare.sum())
        categories, has_other = [_json_value(v) for v in kept.index], True
    else:
        slot_counts = counts.to_numpy()
        categories, has_other = [_json_value(v) for v in counts.index], False

    total = slot_counts.sum()
    frequencies = slot_counts[slot_counts > 0] / total if total else np.ones(1)
    entropy = float(-(frequencies * np.log(frequencies)).sum())
    mode = int(np.argmax(slot_counts)) if len(slot_counts) else len(categories) + int(has_other)
    return ColumnSchema(
        name=name,
        kind=CATEGORICAL,
        dtype=str(series.dtype),
        categories=categories,
        has_other=has_other,
        rare_values=rare_values,
        mode=mode,
        entropy=entropy,
    )


def _stable_order(counts: pd.Series) -> np.ndarray:
    """Positions that sort the categories by value, or by their text when values do not compare."""
    labels = list(counts.index)
    try:
        return np.asarray(sorted(range(len(labels)), key=lambda i: labels[i]), dtype=np.int64)
    except TypeError:
        return np.asarray(sorted(range(len(labels)), key=lambda i: str(labels[i])), dtype=np.int64)


def _json_value(value: Any) -> Any:
    """Convert a category label to a plain Python value that JSON can store."""
    return value.item() if isinstance(value, np.generic) else value


def _category_slots(column: ColumnSchema, series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Map a column's values to slot indices (NaN where missing) and flag values never seen."""
    series = series.astype(object)
    missing = series.isna().to_numpy()
    lookup = {label: slot for slot, label in enumerate(column.categories)}
    slots = np.array(series.map(lookup).to_numpy(dtype=np.float64, na_value=np.nan))

    outside = np.isnan(slots) & ~missing
    if column.has_other:
        grouped = outside.copy()
        if column.rare_values is not None:
            grouped &= series.isin(column.rare_values).to_numpy()
        slots[grouped] = column.other_slot
        outside &= ~grouped
    slots[outside] = column.unknown_slot
    return slots.astype(np.float32), outside


def restore_numeric_dtype(values: np.ndarray, dtype: str) -> np.ndarray:
    """Cast float values back to a numeric column's training dtype, rounding for integers."""
    kind = _dtype_kind(dtype)
    if kind in "iu" and np.isfinite(values).all():
        return np.round(values).astype(dtype)
    if kind == "f":
        return values.astype(dtype)
    return values


def _restore_categorical_dtype(labels: np.ndarray, column: ColumnSchema) -> Any:
    if column.dtype == "category":
        # Decoding never predicts the "unknown" slot, so it is no category of the output.
        return pd.Categorical(labels, categories=column.slot_labels()[:-1])
    # Bool and number labels come back in their dtype unless an "other" or "unknown" label is present.
    if _dtype_kind(column.dtype) in "biuf" and not any(isinstance(v, str) for v in labels):
        return labels.astype(column.dtype)
    if column.dtype.startswith("string"):
        return pd.array([str(v) for v in labels], dtype=column.dtype)
    return labels


def _dtype_kind(dtype: str) -> str:
    """NumPy's kind letter of a dtype name; "O" for pandas extension dtypes."""
    try:
        return np.dtype(dtype).kind
    except TypeError:
        return "O"


def _listed(values: Sequence[Any], quote: bool = True) -> str:
    shown = [repr(v) if quote else str(v) for v in values[:_MAX_LISTED]]
    more = f" and {len(values) - _MAX_LISTED} more" if len(values) > _MAX_LISTED else ""
    return "[" + ", ".join(shown) + "]" + more
