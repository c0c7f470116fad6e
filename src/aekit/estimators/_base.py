"""Machinery shared by aekit's scikit-learn estimators: input checks, the train/validation
split, scaling, the training run, batched inference and the PCA baseline."""

from __future__ import annotations

import logging
import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._device import (
    amp_settings,
    is_memory_mapped,
    keep_data_on_host,
    resolve_device,
    to_device,
    torch_threads,
)
from .._seed import resolve_seed, torch_seeded
from ..baselines import pca_reconstruction_mse
from ..config import TrainingConfig
from ..data.validation import check_array_finite, check_scores_finite, to_float_array
from ..exceptions import AekitWarning, ConfigError, DataError, ModelFileError
from ..losses import LOSSES, reconstruction_error
from ..models import Autoencoder
from ..models.layers import OUTPUT_ACTIVATIONS, check_choice, check_integer
from ..preprocessing import SCALINGS, UNIT_RANGE_SCALINGS, Scaler
from ..training import EarlyStopping, EpochLogger, ProgressBar, Trainer
from ..training.callbacks import Callback, ReconstructionTimeline
from ..training.distributed import (
    DistributedContext,
    is_main_process,
    launched_distributed,
    local_device,
    process_rank,
    revert_sync_batchnorm,
    setup_distributed,
)
from ..training.optim import build_adam
from ._checkpoints import CheckpointPlan, data_fingerprint, plan_checkpoints

logger = logging.getLogger(__name__)

# Rows per forward pass at inference; results do not depend on it (evaluation mode).
INFERENCE_BATCH_SIZE = 4096
# Training rows kept in the fitted model (and its file) to check exported graphs against.
REFERENCE_ROWS = 64


class BaseAutoEncoder(BaseEstimator):
    """Fit and inference logic common to the autoencoder estimators.

    Subclasses define ``__init__`` (parameters only), ``_build_model`` and
    ``_build_objective``.
    """

    # --- hooks for subclasses ---------------------------------------------------------

    def _build_model(self, n_features: int, input_shape: tuple[int, ...], output_activation: str) -> Autoencoder:
        raise NotImplementedError

    def _build_table_model(self, schema: Any) -> Autoencoder:
        """Return the model for a table with a column schema; see ``_tabular``."""
        raise ConfigError(
            f"{type(self).__name__} takes numeric data only; use aekit.AutoEncoder or "
            "aekit.AnomalyDetector for tables with categorical columns or missing values."
        )

    def _build_objective(self, x_train: torch.Tensor) -> Callable[..., dict[str, torch.Tensor]]:
        """Return the training objective; ``x_train`` is the scaled training tensor, for
        objectives with data-dependent settings."""
        raise NotImplementedError

    def _training_callbacks(self) -> list[Callback]:
        """Return callbacks that the subclass adds to every training run."""
        return []

    # --- fitting ----------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> BaseAutoEncoder:
        """Train the autoencoder on ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features), an image array
            of shape (n_samples, channels, height, width), or a TableStream
            Training data. Estimators with a ``categorical_columns`` parameter also take
            DataFrames with categorical columns and, with ``impute`` set, missing
            values; the others need numeric columns. A stream from
            :func:`aekit.data.stream` trains on a file larger than memory, chunk by chunk.
        y : ignored
            Present for scikit-learn compatibility.

        Returns
        -------
        self
        """
        from ..data.streaming import TableStream
        from ._tabular import fit_table, uses_table

        # A refit on another kind of data must not keep the previous column schema.
        self.__dict__.pop("schema_", None)
        if not isinstance(X, TableStream) and uses_table(self, X):
            with torch_threads(self._option("n_threads")):
                return fit_table(self, X)
        if isinstance(X, TableStream):
            from ._streaming import fit_stream

            with torch_threads(self._option("n_threads")):
                return fit_stream(self, X)
        with torch_threads(self._option("n_threads")):
            return self._fit_array(X)

    def _fit_array(self, X: Any) -> BaseAutoEncoder:
        training = self._training_config()
        flat, feature_names, input_shape = self._check_training_data(X)
        n_samples, n_features = flat.shape

        checkpoints = plan_checkpoints(self, lambda: data_fingerprint(flat))
        seed = checkpoints.seed if checkpoints is not None else resolve_seed(self.random_state)
        device, context = self._resolve_execution(training)
        train_rows, val_rows = self._split(n_samples, training.validation_fraction, seed)

        scaler_kind = self._resolve_scaling(len(input_shape))
        output_activation = self._resolve_output_activation(scaler_kind)
        scaler = Scaler(scaler_kind).fit(flat[train_rows])
        scaled = scaler.transform(flat)

        with torch_seeded(seed):
            model = self._build_model(n_features, input_shape, output_activation).to(device)
        x_train = self._to_model_tensor(scaled[train_rows], model, input_shape, torch.device("cpu"))
        # A memory-mapped X moves to the device batch by batch, never whole.
        # TODO: the scaled training rows are still copied whole into host memory; for files
        # larger than memory, train on aekit.data.stream(path) instead.
        if not keep_data_on_host(x_train.nbytes, device, memory_mapped=is_memory_mapped(X)):
            x_train = x_train.to(device)
        x_val = None
        if len(val_rows):
            # On several ranks each evaluates its own share of the validation rows.
            start, stop = (0, len(val_rows)) if context is None else context.rank_rows(len(val_rows))
            x_val = self._to_model_tensor(scaled[val_rows[start:stop]], model, input_shape, device)

        timeline = self._timeline_callback(x_val if x_val is not None else x_train)
        history = self._train(model, training, x_train, x_val, seed, context, timeline, checkpoints)
        self._set_fitted(model, scaler, history, n_features, input_shape, feature_names, seed, device)
        self.metrics_ = self._compute_metrics(scaled, train_rows, val_rows)
        self.timeline_ = self._timeline_record(timeline)
        self._set_data_summary(flat, train_rows, input_shape, seed)
        return self

    def _set_fitted(
        self,
        model: Autoencoder,
        scaler: Scaler,
        history: Any,
        n_features: int,
        input_shape: tuple[int, ...],
        feature_names: list[str] | None,
        seed: int,
        device: torch.device,
    ) -> None:
        self.model_ = model.eval()
        self.scaler_ = scaler
        self.history_ = history
        self.n_features_in_ = n_features
        self.input_shape_ = tuple(input_shape)
        if feature_names is not None:
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.latent_dim_ = model.latent_dim
        self.seed_ = seed
        self.device_ = device

    def _option(self, name: str) -> Any:
        """Return a speed or distribution parameter, or its default for subclasses without it."""
        defaults = {
            "precision": "fp32", "compile": False, "n_threads": None, "distributed": "auto",
            "checkpoint_dir": None, "checkpoint_every": 1, "resume": False,
        }
        return getattr(self, name, defaults[name])

    def _resolve_execution(self, training: TrainingConfig) -> tuple[torch.device, DistributedContext | None]:
        """Return the training device and, when running on several processes, the process group.

        Checks ``precision``, ``compile`` and ``distributed`` before any data is prepared.
        """
        device = resolve_device(self.device)
        mode = self._option("distributed")
        check_choice("distributed", mode, ("auto", True, False))
        if not isinstance(self._option("compile"), bool):
            raise ConfigError(f"compile must be True or False, got {self._option('compile')!r}.")

        context = None
        if launched_distributed() if mode == "auto" else mode:
            device = local_device(device)
            context = setup_distributed(device)
            if context.world_size == 1:
                context = None
        amp_settings(self._option("precision"), device)

        if context is not None and training.batch_size < 2 * context.world_size:
            raise ConfigError(
                f"batch_size={training.batch_size} is the global batch, shared by {context.world_size} "
                f"processes; it must be at least 2 rows per process ({2 * context.world_size})."
            )
        return device, context

    def _set_data_summary(self, flat: np.ndarray, train_rows: np.ndarray, input_shape: tuple[int, ...], seed: int) -> None:
        """Record the training rows' count and ranges, and keep reference rows for export checks."""
        self.n_samples_fit_ = len(flat)
        self.data_min_ = flat[train_rows].min(axis=0)
        self.data_max_ = flat[train_rows].max(axis=0)
        reference = np.random.default_rng(seed).permutation(train_rows)[:REFERENCE_ROWS]
        self.reference_rows_ = flat[np.sort(reference)].reshape(-1, *input_shape)
        self.exports_ = []

    def _training_config(self) -> TrainingConfig:
        training = TrainingConfig(
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            validation_fraction=self.validation_fraction,
            early_stopping=self.early_stopping,
            patience=self.patience,
        )
        check_integer("verbose", self.verbose, 0)
        if training.batch_size == 1 and getattr(self, "batch_norm", False):
            raise ConfigError(
                "batch_size=1 cannot train with batch normalisation, which needs at least 2 rows "
                "per batch to compute its statistics; use batch_size >= 2 or batch_norm=False."
            )
        return training

    def _check_training_data(self, X: Any) -> tuple[np.ndarray, list[str] | None, tuple[int, ...]]:
        array, feature_names = to_float_array(X)
        flat = array.reshape(len(array), -1)
        check_array_finite(flat, feature_names, when="training")

        if len(flat) < 2 and getattr(self, "batch_norm", False):
            raise DataError(
                f"X has {len(flat)} sample; training with batch normalisation needs at least 2 "
                "samples. Add samples or set batch_norm=False."
            )
        return flat, feature_names, tuple(array.shape[1:])

    def _split(self, n_samples: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Return seeded (train, validation) row indices; validation may be empty."""
        order = np.random.default_rng(seed).permutation(n_samples)
        n_val = int(round(n_samples * fraction))
        if fraction > 0 and (n_val == 0 or n_samples - n_val < 2):
            warnings.warn(
                f"validation skipped: validation_fraction={fraction} of {n_samples} samples "
                "leaves no usable validation or training rows; training on every sample.",
                AekitWarning,
                stacklevel=3,
            )
            n_val = 0
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    def _resolve_scaling(self, sample_ndim: int) -> str:
        if self.scaling == "auto":
            # Images (samples with 2 or more axes) share one pixel range; tables vary by column.
            return "global-minmax" if sample_ndim > 1 else "standard"
        check_choice("scaling", self.scaling, ("auto", *SCALINGS))
        return self.scaling

    def _resolve_output_activation(self, scaler_kind: str) -> str:
        check_choice("loss", self.loss, LOSSES)
        activation = self.output_activation
        if activation == "auto":
            activation = "sigmoid" if scaler_kind in UNIT_RANGE_SCALINGS else "identity"
        check_choice("output_activation", activation, ("auto", *OUTPUT_ACTIVATIONS))

        if self.loss == "bce" and (scaler_kind not in UNIT_RANGE_SCALINGS or activation != "sigmoid"):
            raise ConfigError(
                f"loss='bce' needs data scaled to [0, 1] and a sigmoid output, but scaling resolves "
                f"to {scaler_kind!r} and output_activation to {activation!r}; use scaling='minmax' "
                "(or 'global-minmax' for images) with output_activation='auto', or loss='mse'."
            )
        if activation == "sigmoid" and scaler_kind not in UNIT_RANGE_SCALINGS:
            # A sigmoid cannot output values outside (0, 1), so it could never reconstruct them.
            raise ConfigError(
                f"output_activation='sigmoid' outputs values in (0, 1), but scaling resolves to "
                f"{scaler_kind!r}, which leaves data outside [0, 1]; use scaling='minmax' (or "
                "'global-minmax' for images), or output_activation='auto'."
            )
        return activation

    def _train(
        self,
        model: Autoencoder,
        training: TrainingConfig,
        x_train: torch.Tensor,
        x_val: torch.Tensor | None,
        seed: int,
        context: DistributedContext | None = None,
        timeline: ReconstructionTimeline | None = None,
        checkpoints: CheckpointPlan | None = None,
    ):
        callbacks: list[Callback] = []
        if training.early_stopping:
            monitor = "val_loss" if x_val is not None else "train_loss"
            callbacks.append(EarlyStopping(monitor=monitor, patience=training.patience))
        # The timeline comes after early stopping, so its last record sees the restored weights.
        if timeline is not None:
            callbacks.append(timeline)
        callbacks.extend(self._user_callbacks())
        verbose = self.verbose if context is None or context.is_main else 0
        if verbose >= 1:
            callbacks.append(ProgressBar())
        if verbose >= 2:
            callbacks.append(EpochLogger())
        callbacks.extend(self._training_callbacks())
        if checkpoints is not None:
            # Last, so each checkpoint contains the other callbacks' state at the end of its epoch.
            callbacks.append(checkpoints.callback())

        device = next(model.parameters()).device
        optimizer = build_adam(model.parameters(), training.learning_rate, device)
        generator = torch.Generator().manual_seed(seed)
        trainer = Trainer(
            model,
            self._objective_for(model, x_train),
            optimizer,
            batch_size=training.batch_size,
            max_epochs=training.max_epochs,
            generator=generator,
            callbacks=callbacks,
            precision=self._option("precision"),
            compile=self._option("compile"),
            distributed=context,
        )
        with torch_seeded(seed):
            if checkpoints is not None and checkpoints.resume_state is not None:
                self._restore_trainer(trainer, checkpoints)
            history = trainer.fit(x_train, x_val)
        if context is not None:
            revert_sync_batchnorm(model)

        logger.info(
            "trained %s for %d epochs (best %s), final train_loss %.6g",
            type(model).__name__, history.n_epochs, history.best_epoch, history.train_loss[-1],
        )
        return history

    def _restore_trainer(self, trainer: Trainer, checkpoints: CheckpointPlan) -> None:
        try:
            trainer.restore(checkpoints.resume_state)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise ModelFileError(
                f"the newest checkpoint in '{checkpoints.directory}' does not fit this run: {err}. "
                "Resume with the settings that wrote it, or set resume=False to start again."
            ) from err

    def _objective_for(self, model: Autoencoder, x_train: torch.Tensor) -> Callable[..., dict[str, torch.Tensor]]:
        if getattr(model, "name", None) == "tabular":
            from ._tabular import table_objective

            return table_objective(self)
        return self._build_objective(x_train)

    def _user_callbacks(self) -> list[Callback]:
        callbacks = list(getattr(self, "callbacks", None) or [])
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise ConfigError(
                    f"callbacks must be aekit.training.Callback instances, got {type(callback).__name__}; "
                    "subclass Callback and override the hooks you need."
                )
        return callbacks

    def _timeline_callback(self, x: torch.Tensor) -> ReconstructionTimeline | None:
        n_inputs = getattr(self, "timeline", 0)
        if isinstance(n_inputs, bool) or not isinstance(n_inputs, numbers.Integral) or n_inputs < 0:
            raise ConfigError(f"timeline must be a non-negative integer (inputs to record), got {n_inputs!r}.")
        return ReconstructionTimeline(x[: int(n_inputs)]) if n_inputs else None

    def _timeline_record(self, timeline: ReconstructionTimeline | None) -> dict[str, Any] | None:
        """Turn the timeline's records into arrays in the original units and sample shape."""
        if timeline is None:
            return None
        inputs = timeline.x.float().cpu().numpy()
        recon = np.stack([r.numpy() for r in timeline.reconstructions])  # (n_records, n_inputs, ...)
        n_records, n_inputs = recon.shape[:2]
        return {
            "epochs": np.asarray(timeline.epochs, dtype=np.int64),
            "inputs": self._to_original_units(inputs),
            "reconstructions": self._to_original_units(recon.reshape(n_records * n_inputs, -1)).reshape(
                n_records, n_inputs, *self.input_shape_
            ),
        }

    def _compute_metrics(self, scaled: np.ndarray, train_rows: np.ndarray, val_rows: np.ndarray) -> dict[str, Any]:
        """Model and PCA reconstruction MSE on the training and validation rows, in scaled units."""
        eval_sets = {"train": scaled[train_rows]}
        if len(val_rows):
            eval_sets["val"] = scaled[val_rows]

        metrics: dict[str, Any] = {"n_train": int(len(train_rows)), "n_val": int(len(val_rows))}
        for name, values in eval_sets.items():
            metrics[f"{name}_mse"] = float(np.mean(self._scaled_errors(values, "mse"), dtype=np.float64))
        metrics.setdefault("val_mse", None)

        # PCA needs two training rows to estimate any variance.
        n_components, pca_errors = None, {}
        if len(train_rows) >= 2:
            n_components, pca_errors = pca_reconstruction_mse(
                scaled[train_rows], eval_sets, self.latent_dim_, random_state=self.seed_
            )
        metrics["pca_components"] = n_components
        metrics["pca_train_mse"] = pca_errors.get("train")
        metrics["pca_val_mse"] = pca_errors.get("val")
        return metrics

    # --- inference --------------------------------------------------------------------

    def _check_inference_data(self, X: Any, when: str) -> np.ndarray:
        """Validate ``X`` against the fitted input and return it scaled, shape (n, n_features)."""
        check_is_fitted(self, "model_")
        if getattr(self, "schema_", None) is not None:
            from ._tabular import encode_table

            return encode_table(self, X, when)
        if isinstance(X, pd.DataFrame):
            X = self._align_columns(X)
        array, _ = to_float_array(X)
        flat = array.reshape(len(array), -1)
        if flat.shape[1] != self.n_features_in_:
            raise DataError(
                f"X has {flat.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input (input shape {self.input_shape_}); pass "
                "data with the columns the model was trained on."
            )
        check_array_finite(flat, getattr(self, "feature_names_in_", None), when=when)
        return self.scaler_.transform(flat)

    def _align_columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Reorder a DataFrame's columns by name to the training order, or explain the mismatch."""
        expected = getattr(self, "feature_names_in_", None)
        if expected is None or not all(isinstance(c, str) for c in frame.columns):
            return frame
        expected = list(expected)
        columns = list(frame.columns)
        if columns == expected:
            return frame

        missing = [c for c in expected if c not in columns]
        extra = [c for c in columns if c not in expected]
        if missing or extra:
            raise DataError(
                f"X's columns do not match the training columns: missing {missing}, unexpected "
                f"{extra}; pass the {len(expected)} columns the model was trained on."
            )
        return frame[expected]

    def _to_model_tensor(
        self, scaled: np.ndarray, model: Autoencoder, input_shape: tuple[int, ...], device: torch.device
    ) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(scaled, dtype=np.float32))
        if not model.flat_input:
            tensor = tensor.reshape(len(tensor), *input_shape)
        return to_device(tensor, device)

    @torch.inference_mode()
    def _batched(self, scaled: np.ndarray, step: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
        """Apply ``step`` to model-ready batches of ``scaled`` rows and stack the results."""
        model = self.model_.eval()
        parameter = next(model.parameters())
        outputs = []
        with torch_threads(self._option("n_threads")):
            for start in range(0, len(scaled), INFERENCE_BATCH_SIZE):
                batch = self._to_model_tensor(
                    scaled[start : start + INFERENCE_BATCH_SIZE], model, self.input_shape_, parameter.device
                )
                outputs.append(step(batch).float().cpu().numpy())
        return np.concatenate(outputs)

    def _scaled_errors(self, scaled: np.ndarray, loss: str | None = None) -> np.ndarray:
        loss = loss or self.loss

        def step(x: torch.Tensor) -> torch.Tensor:
            return reconstruction_error(self.model_(x).x_recon, x, loss)

        def table_step(x: torch.Tensor) -> torch.Tensor:
            return self.model_.row_errors(x, self.model_(x).x_recon)

        if getattr(self, "schema_", None) is not None:
            return self._batched(scaled, table_step)

        return self._batched(scaled, step)

    def _to_original_units(self, scaled_recon: np.ndarray) -> np.ndarray:
        flat = scaled_recon.reshape(len(scaled_recon), -1)
        return self.scaler_.inverse_transform(flat).reshape(len(flat), *self.input_shape_)

    def reconstruction_error(self, X: Any) -> np.ndarray:
        """Per-sample reconstruction error: higher means less typical of the training data.

        The error is the training loss (mean squared error by default) averaged over the
        features, computed in the scaled units the model was trained in, so that every
        feature counts on the same scale. For a table with a column schema it is the
        mean over the row's present cells of the squared error (numeric columns,
        standardised) or the cross-entropy divided by the column's training entropy
        (categorical columns); a category never seen in training gets a large error.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return check_scores_finite(self._scaled_errors(self._check_inference_data(X, when="scoring")))

    def score_samples(self, X: Any) -> np.ndarray:
        """Per-sample score, higher for more normal samples: the negative reconstruction error."""
        return -self.reconstruction_error(X)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean of :meth:`score_samples`, so that model selection prefers lower error."""
        return float(np.mean(self.score_samples(X), dtype=np.float64))

    def reconstruct(self, X: Any) -> np.ndarray:
        """Encode and decode ``X``; return reconstructions in the original units and shape.

        A model fitted on a DataFrame with a column schema returns a DataFrame with the
        training column names and dtypes, categorical columns as their most likely label.
        """
        if getattr(self, "schema_", None) is not None:
            from ._tabular import reconstruct_table

            check_is_fitted(self, "model_")
            return reconstruct_table(self, X)
        scaled = self._check_inference_data(X, when="reconstructing")
        recon = self._batched(scaled, lambda x: self.model_(x).x_recon)
        return self._to_original_units(recon)

    def _restore_extra(self, config: dict[str, Any]) -> None:
        """Restore fitted attributes that only a subclass has, when loading a model file."""

    def _export_blockers(self) -> list[str]:
        """Reasons this model cannot be expressed as an ONNX graph; empty when it can."""
        if getattr(self, "schema_", None) is not None:
            return [
                "the model has a column schema (categorical columns or missing values), whose "
                "category lookup and missing-value masks have no ONNX export yet"
            ]
        return []

    def export_onnx(self, path: str, X: Any = None, *, opset: int | None = None, strict: bool = True):
        """Export the whole model (scaling, encoder, decoder, error score) to one ONNX file.

        The graph runs in ONNX Runtime on ``X`` (by default on reference rows kept from
        the training data) and every output is compared with PyTorch before the file is
        kept. Needs ``pip install 'aekit[onnx]'``. See :func:`aekit.export.export_onnx`.

        Returns
        -------
        ExportResult
        """
        from ..export import ONNX_OPSET, export_onnx

        return export_onnx(self, path, X, opset=opset or ONNX_OPSET, strict=strict)

    def save(self, path: str) -> None:
        """Write the fitted estimator to the folder ``path`` (safetensors weights + JSON).

        In a distributed run every process has the same model, and only rank 0
        writes it. On the other ranks ``save`` does nothing.
        """
        from ..serialization import save_estimator

        if not is_main_process():
            logger.debug("rank %d skips save(%r): rank 0 writes the model", process_rank(), path)
            return
        save_estimator(self, path)


def resolve_latent_dim(latent_dim: object, n_features: int) -> int:
    """Return the latent size: ``latent_dim`` itself, or for ``None`` the square root of
    the number of features, rounded, between 1 and 64.

    Raises ``ConfigError`` for a size below 1. Warns when the code is not smaller than
    the input: an overcomplete code only makes sense with a regulariser (sparsity,
    input noise, dropout), since otherwise the network can learn the identity.
    """
    if latent_dim is None:
        return max(1, min(64, round(math.sqrt(n_features))))
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, numbers.Integral) or latent_dim < 1:
        raise ConfigError(f"latent_dim must be a positive integer or None, got {latent_dim!r}.")
    latent_dim = int(latent_dim)
    if latent_dim >= n_features:
        warnings.warn(
            f"latent_dim={latent_dim} is not smaller than the {n_features} input features, so "
            "the autoencoder can learn the identity instead of a compressed code; use a "
            f"latent_dim below {n_features} or add regularisation (sparsity, input noise, dropout).",
            AekitWarning,
            stacklevel=4,
        )
    return latent_dim
