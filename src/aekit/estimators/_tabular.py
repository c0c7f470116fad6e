"""Training and inference on tables with categorical columns or missing values.

An estimator takes this path when its data needs a column schema: a DataFrame with
object, string, category or bool columns, declared ``categorical_columns``, or
``impute`` set. The table is encoded by :class:`~aekit.data.schema.TableSchema` (NaN
for missing cells) and modelled by a :class:`~aekit.models.tabular.TabularAutoencoder`.
Plain numeric arrays never come here, so their path keeps its speed.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._device import keep_data_on_host
from .._seed import resolve_seed, torch_seeded
from ..data.schema import TableSchema, as_frame, check_impute, is_categorical_dtype
from ..exceptions import ConfigError, DataError
from ..models.tabular import TabularAutoencoder, entropy_weight
from ..preprocessing import Scaler
from ..training.objectives import TabularObjective
from ._checkpoints import plan_checkpoints

logger = logging.getLogger(__name__)

# Share of present cells hidden from the encoder at each training step when
# impute="model", so that the network learns to fill a cell from the other columns.
MASK_FRACTION = 0.2
# Floor of the training entropy that divides a categorical column's cross-entropy, so
# that a nearly constant column does not get an unbounded weight.
MIN_ENTROPY = 0.1


def uses_table(estimator: Any, X: Any) -> bool:
    """Return whether ``estimator`` must fit ``X`` through a column schema."""
    if not hasattr(estimator, "impute"):
        return False
    check_impute(estimator.impute)
    if estimator.impute is not None or estimator.categorical_columns:
        return True
    return isinstance(X, pd.DataFrame) and any(is_categorical_dtype(X[c]) for c in X.columns)


def fit_table(estimator: Any, X: Any) -> Any:
    """Fit ``estimator`` on the table ``X``; see the module docstring."""
    training = estimator._training_config()
    frame, from_frame = as_frame(X)
    n_samples = len(frame)
    if n_samples < 2 and getattr(estimator, "batch_norm", False):
        raise DataError(
            f"X has {n_samples} sample; training with batch normalisation needs at least 2 samples. "
            "Add samples or set batch_norm=False."
        )

    checkpoints = plan_checkpoints(estimator, lambda: frame_fingerprint(frame))
    seed = checkpoints.seed if checkpoints is not None else resolve_seed(estimator.random_state)
    device, context = estimator._resolve_execution(training)
    train_rows, val_rows = estimator._split(n_samples, training.validation_fraction, seed)

    # Categories and scales come from the training rows only, as a scaler would.
    schema = TableSchema.infer(frame.iloc[train_rows], estimator.categorical_columns, estimator.max_categories)
    schema.from_frame = from_frame
    encoded, _ = schema.encode(schema.align(frame))
    encoded = apply_impute(estimator, schema, encoded, when="training")

    with torch_seeded(seed):
        model = estimator._build_table_model(schema).to(device)
    x_train = torch.from_numpy(np.ascontiguousarray(encoded[train_rows]))
    if not keep_data_on_host(x_train.nbytes, device):
        x_train = x_train.to(device)
    x_val = None
    if len(val_rows):
        start, stop = (0, len(val_rows)) if context is None else context.rank_rows(len(val_rows))
        x_val = torch.from_numpy(np.ascontiguousarray(encoded[val_rows[start:stop]])).to(device)

    history = estimator._train(model, training, x_train, x_val, seed, context, None, checkpoints)
    feature_names = schema.names if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns) else None
    scaler = Scaler("none").fit(np.zeros((1, len(schema.columns)), dtype=np.float32))
    n_columns = len(schema.columns)
    estimator._set_fitted(model, scaler, history, n_columns, (n_columns,), feature_names, seed, device)
    estimator.schema_ = schema
    estimator.metrics_ = _metrics(estimator, encoded, train_rows, val_rows)
    estimator.timeline_ = None
    _set_table_summary(estimator, encoded, train_rows, seed)
    return estimator


def frame_fingerprint(frame: pd.DataFrame) -> dict[str, Any]:
    """Rows, columns and SHA-256 of a table's cells, to check a resumed run gets the same table."""
    # One 64-bit hash per row covers every cell, categories and gaps included.
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha256(row_hashes.tobytes())
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    return {"n_samples": len(frame), "n_features": len(frame.columns), "sha256": digest.hexdigest()}


def table_objective(estimator: Any) -> TabularObjective:
    return TabularObjective(MASK_FRACTION if estimator.impute == "model" else 0.0)


def column_weights(schema: TableSchema) -> tuple[float, ...]:
    """Weight of each column's error: 1 for numeric columns (standardised), 1 / training
    entropy for categorical ones (see :func:`~aekit.models.tabular.entropy_weight`)."""
    return tuple(
        1.0 if column.kind == "numeric" else entropy_weight(column.entropy, MIN_ENTROPY) for column in schema.columns
    )


def apply_impute(estimator: Any, schema: TableSchema, encoded: np.ndarray, when: str) -> np.ndarray:
    """Handle the missing cells of an encoded table as ``estimator.impute`` sets.

    ``None`` rejects them, ``"mean"`` fills them with the training means and most
    frequent categories, and ``"model"`` keeps them as NaN for the model to mask.
    """
    impute = estimator.impute
    check_impute(impute)
    if impute == "model":
        return encoded
    if impute == "mean":
        return schema.fill_means(encoded)
    message = schema.missing_message(encoded, when)
    if message is not None:
        raise DataError(message)
    return encoded


def encode_table(estimator: Any, X: Any, when: str) -> np.ndarray:
    """Check ``X`` against the fitted schema and return it encoded for the model."""
    schema = estimator.schema_
    encoded, unseen = schema.encode(schema.align(X))
    if unseen.any():
        counts = unseen.sum(axis=0)
        listed = ", ".join(f"{schema.columns[j].name!r} ({counts[j]})" for j in np.flatnonzero(counts))
        logger.info("values never seen in training, scored as unknown categories, in columns %s", listed)
    return apply_impute(estimator, schema, encoded, when)


@torch.inference_mode()
def decode_output(estimator: Any, x_recon: np.ndarray) -> pd.DataFrame:
    """Turn decoder outputs into a table: numeric values and the most likely category."""
    model: TabularAutoencoder = estimator.model_
    numeric, logits = model.split_output(torch.from_numpy(x_recon))
    slots = [_most_likely_slot(column_logits) for column_logits in logits]
    slot_matrix = np.stack(slots, axis=1) if slots else np.zeros((len(x_recon), 0), dtype=np.int64)
    return estimator.schema_.decode(numeric.numpy(), slot_matrix)


def _most_likely_slot(logits: torch.Tensor) -> np.ndarray:
    # The "unknown" slot (last) is never a training target, so it is never the prediction.
    return logits[:, :-1].argmax(dim=1).numpy() if logits.shape[1] > 1 else np.zeros(len(logits), dtype=np.int64)


def reconstruct_table(estimator: Any, X: Any) -> Any:
    """Reconstructions of ``X`` as a table with the training columns and dtypes."""
    encoded = encode_table(estimator, X, when="reconstructing")
    recon = estimator._batched(encoded, lambda x: estimator.model_(x).x_recon)
    return estimator.schema_.to_frame(decode_output(estimator, recon))


def decode_codes(estimator: Any, codes: np.ndarray) -> Any:
    """Decode latent codes to a table with the training columns and dtypes."""
    recon = estimator._decode_codes(codes)
    return estimator.schema_.to_frame(decode_output(estimator, recon))


def impute_table(estimator: Any, X: Any) -> Any:
    """Return ``X`` with its missing cells filled; present cells are kept as they are."""
    impute = estimator.impute
    if impute is None:
        raise ConfigError(
            f"impute_missing() needs a model trained with impute='model' or impute='mean', but this "
            f"{type(estimator).__name__} has impute=None; set impute and fit again."
        )
    schema = estimator.schema_
    frame = schema.align(X)
    encoded, _ = schema.encode(frame)
    missing = np.isnan(encoded)
    if impute == "mean":
        filled = schema.fill_means(encoded)
        numeric = filled[:, schema.numeric_positions]
        slots = filled[:, schema.categorical_positions].astype(np.int64)
        guesses = schema.decode(numeric, slots)
    else:
        recon = estimator._batched(encoded, lambda x: estimator.model_(x).x_recon)
        guesses = decode_output(estimator, recon)

    result = frame.copy()
    for j, column in enumerate(schema.columns):
        gaps = missing[:, j]
        if not gaps.any():
            continue
        values = result[column.name].astype(object)
        values[gaps] = guesses[column.name].astype(object).to_numpy()[gaps]
        result[column.name] = _training_dtype(values, column.dtype)
    return schema.to_frame(result)


def _training_dtype(values: pd.Series, dtype: str) -> pd.Series:
    """Cast a filled column back to its training dtype where the values allow it."""
    try:
        return values.astype(dtype)
    except (TypeError, ValueError):
        # Labels such as "<other>" in a bool or number column keep it as objects.
        return values


@torch.inference_mode()
def cell_details(estimator: Any, X: Any) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """Per-cell view of ``X`` for explanations.

    Returns the aligned input, its reconstruction (a DataFrame), the weighted error of
    each cell (NaN where the cell is missing) and, for categorical cells, the
    probability of the actual value under the model (NaN elsewhere).
    """
    schema = estimator.schema_
    frame = schema.align(X)
    encoded = encode_table(estimator, frame, when="scoring")
    model: TabularAutoencoder = estimator.model_

    def step(x: torch.Tensor) -> torch.Tensor:
        x_recon = model(x).x_recon
        errors, present = model.cell_errors(x, x_recon)
        errors = torch.where(present, errors, torch.full_like(errors, float("nan")))
        return torch.cat([x_recon, errors, _actual_probabilities(model, x, x_recon)], dim=1)

    out = estimator._batched(encoded, step)
    width = model.config.output_dim
    n_columns = len(schema.columns)
    recon = out[:, :width]
    errors = out[:, width : width + n_columns].astype(np.float64)
    probabilities = out[:, width + n_columns :].astype(np.float64)
    return frame.reset_index(drop=True), decode_output(estimator, recon), errors, probabilities


def _actual_probabilities(model: TabularAutoencoder, x: torch.Tensor, x_recon: torch.Tensor) -> torch.Tensor:
    """Probability under the model of each categorical cell's actual slot; NaN elsewhere."""
    probabilities = torch.full_like(x, float("nan"))
    _, logits = model.split_output(x_recon.float())
    for position, column_logits in enumerate(logits):
        column = model.categorical_index[position]
        slots = x[:, column]
        present = ~torch.isnan(slots)
        chosen = torch.softmax(column_logits, dim=1).gather(1, torch.where(present, slots, 0).long()[:, None])[:, 0]
        probabilities[:, column] = torch.where(present, chosen, torch.full_like(chosen, float("nan")))
    return probabilities


def _metrics(estimator: Any, encoded: np.ndarray, train_rows: np.ndarray, val_rows: np.ndarray) -> dict[str, Any]:
    """Mean reconstruction error of the training and validation rows; no PCA baseline,
    which has no meaning for categorical columns."""
    metrics: dict[str, Any] = {"n_train": int(len(train_rows)), "n_val": int(len(val_rows))}
    metrics["train_mse"] = float(np.mean(estimator._scaled_errors(encoded[train_rows]), dtype=np.float64))
    metrics["val_mse"] = None
    if len(val_rows):
        metrics["val_mse"] = float(np.mean(estimator._scaled_errors(encoded[val_rows]), dtype=np.float64))
    metrics.update({"pca_components": None, "pca_train_mse": None, "pca_val_mse": None})
    return metrics


def _set_table_summary(estimator: Any, encoded: np.ndarray, train_rows: np.ndarray, seed: int) -> None:
    """Record the training rows' count and encoded ranges (0 for an all-missing column)."""
    from ._base import REFERENCE_ROWS

    train = encoded[train_rows]
    present = ~np.isnan(train)
    estimator.n_samples_fit_ = len(encoded)
    estimator.data_min_ = np.where(present.any(axis=0), np.nanmin(np.where(present, train, np.inf), axis=0), 0.0)
    estimator.data_max_ = np.where(present.any(axis=0), np.nanmax(np.where(present, train, -np.inf), axis=0), 0.0)
    estimator.data_min_ = estimator.data_min_.astype(np.float32)
    estimator.data_max_ = estimator.data_max_.astype(np.float32)
    reference = np.random.default_rng(seed).permutation(train_rows)[:REFERENCE_ROWS]
    estimator.reference_rows_ = encoded[np.sort(reference)]
    estimator.exports_ = []

