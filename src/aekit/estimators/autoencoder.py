"""``AutoEncoder``: the scikit-learn estimator around a dense autoencoder."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..data.validation import to_float_array
from ..exceptions import AekitWarning, ConfigError, DataError
from ..models import DenseAutoencoder, DenseConfig
from ..training import ReconstructionObjective
from ._base import BaseAutoEncoder, resolve_latent_dim


class AutoEncoder(TransformerMixin, BaseAutoEncoder):
    """Autoencoder for dimensionality reduction, reconstruction and scoring.

    A dense encoder compresses each sample to a latent code of ``latent_dim`` units and
    a mirrored decoder reconstructs it. Preprocessing is fitted on the training rows
    and stored with the model; outputs come back in the original units.

    Parameters
    ----------
    latent_dim : int or None, default=None
        Size of the latent code (the bottleneck). ``None`` uses the square root of the
        number of features, rounded, between 1 and 64.
    hidden_dims : sequence of int or None, default=None
        Widths of the encoder's hidden layers, from the input side; the decoder mirrors
        them. ``None`` sizes two layers from the data: the first is twice the number of
        features rounded up to a power of two, between 64 and 512, and the second is
        half of it. ``()`` gives a shallow autoencoder with no hidden layer.
    activation : str, default="relu"
        Hidden-layer activation: "relu", "leaky_relu", "elu", "selu", "gelu", "silu",
        "tanh" or "sigmoid".
    dropout : float, default=0.0
        Dropout probability after each hidden layer, in [0, 1).
    batch_norm : bool, default=True
        Batch normalisation after each hidden layer's linear map. It regularises and
        speeds up training; at inference it uses running statistics, so a sample's
        output does not depend on the other samples in the call.
    output_activation : {"auto", "sigmoid", "identity"}, default="auto"
        ``"auto"`` uses a sigmoid when the data is min-max scaled to [0, 1] and the
        identity otherwise.
    scaling : {"auto", "standard", "minmax", "global-minmax", "none"}, default="auto"
        Preprocessing fitted on the training rows. ``"auto"`` standardises tables per
        column and maps images (arrays with more than 2 dimensions) to [0, 1] by
        their overall minimum and maximum ("global-minmax").
    loss : {"mse", "bce"}, default="mse"
        Reconstruction loss. "bce" (binary cross-entropy) needs data scaled to [0, 1].
    max_epochs : int, default=200
        Maximum number of passes over the training rows.
    batch_size : int, default=256
        Rows per training step; clipped to the number of training rows.
    learning_rate : float, default=1e-3
        Adam's step size.
    validation_fraction : float, default=0.2
        Share of rows held out, by a seeded shuffle, to monitor the validation loss.
        0 trains on every row.
    early_stopping : bool, default=True
        Stop when the validation reconstruction loss (the training loss without
        validation rows) has not improved for ``patience`` epochs, and restore the
        best epoch's weights.
    patience : int, default=10
        Epochs without improvement before early stopping.
    random_state : int, RandomState or None, default=None
        Seed for the split, weight initialisation, shuffling and dropout. The same
        integer gives bit-identical results on CPU.
    device : str, default="auto"
        "auto" (CUDA, then Apple MPS, then CPU), "cpu", "cuda", "cuda:N" or "mps".
    verbose : int, default=0
        0 is silent, 1 shows a progress bar (in a terminal), 2 also logs each epoch.
    precision : {"fp32", "bf16", "fp16"}, default="fp32"
        Arithmetic of the training forward pass. "bf16" runs it under autocast in
        bfloat16 on CPU, CUDA or MPS, with fp32 weights and optimizer state; it is
        about twice as fast as fp32 on CPUs with AVX512-BF16 or AMX and on recent
        GPUs. "fp16" needs CUDA and adds a gradient scaler. Inference and validation
        always run in fp32.
    compile : bool, default=False
        Train through ``torch.compile``, which fuses kernels after a one-off
        compilation (tens of seconds; it needs a C++ compiler on the CPU).
    n_threads : int or None, default=None
        CPU threads for training and inference (``torch.set_num_threads`` for the
        call, restored afterwards). ``None`` keeps PyTorch's setting: the number of
        physical cores, or ``OMP_NUM_THREADS``. On a machine shared with other
        jobs, fewer threads than cores avoid slow thread contention.
    distributed : {"auto", True, False}, default="auto"
        Train with DistributedDataParallel on the processes that ``torchrun``
        started. "auto" does so when launched by ``torchrun`` with more than one
        process. ``batch_size`` stays the global batch, shared by the processes.
        Batch normalisation syncs its statistics across GPUs (``SyncBatchNorm``),
        but on CPU processes each uses its own rows' statistics.

    Attributes
    ----------
    model_ : DenseAutoencoder
        The trained ``torch.nn.Module``, in evaluation mode.
    scaler_ : Scaler
        Preprocessing fitted on the training rows.
    history_ : History
        Per-epoch training and validation losses.
    metrics_ : dict
        ``train_mse``, ``val_mse``, and the PCA baseline ``pca_train_mse`` and
        ``pca_val_mse`` with as many components as the latent code, all in scaled units.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when fitted on a DataFrame with string column names.
    input_shape_ : tuple of int
        Shape of one sample, e.g. ``(1, 28, 28)`` for grey 28 x 28 images.
    latent_dim_ : int
    hidden_dims_ : tuple of int
    seed_ : int
        The seed actually used, drawn at random when ``random_state`` is None.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from aekit import AutoEncoder
    >>> X = load_digits().data
    >>> ae = AutoEncoder(latent_dim=8, max_epochs=5, random_state=0).fit(X)
    >>> ae.transform(X[:3]).shape
    (3, 8)
    >>> ae.reconstruct(X[:3]).shape
    (3, 64)
    """

    def __init__(
        self,
        latent_dim: int | None = None,
        *,
        hidden_dims: Sequence[int] | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = True,
        output_activation: str = "auto",
        scaling: str = "auto",
        loss: str = "mse",
        max_epochs: int = 200,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        validation_fraction: float = 0.2,
        early_stopping: bool = True,
        patience: int = 10,
        random_state: int | np.random.RandomState | None = None,
        device: str = "auto",
        verbose: int = 0,
        precision: str = "fp32",
        compile: bool = False,
        n_threads: int | None = None,
        distributed: str | bool = "auto",
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.output_activation = output_activation
        self.scaling = scaling
        self.loss = loss
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.precision = precision
        self.compile = compile
        self.n_threads = n_threads
        self.distributed = distributed

    def _build_model(self, n_features: int, input_shape: tuple[int, ...], output_activation: str) -> DenseAutoencoder:
        latent_dim = resolve_latent_dim(self.latent_dim, n_features)
        hidden_dims = resolve_hidden_dims(self.hidden_dims, n_features, latent_dim)
        config = DenseConfig(
            input_dim=n_features,
            latent_dim=latent_dim,
            hidden_dims=hidden_dims,
            activation=self.activation,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            output_activation=output_activation,
        )
        self.hidden_dims_ = hidden_dims
        return DenseAutoencoder(config)

    def _restore_extra(self, config: dict[str, Any]) -> None:
        self.hidden_dims_ = tuple(int(w) for w in config["model"]["config"]["hidden_dims"])

    def _build_objective(self) -> ReconstructionObjective:
        return ReconstructionObjective(self.loss)

    def transform(self, X: Any) -> np.ndarray:
        """Encode ``X`` to latent codes.

        Returns
        -------
        ndarray of shape (n_samples, latent_dim_)
        """
        scaled = self._check_inference_data(X, when="encoding")
        return self._batched(scaled, self.model_.encode)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Decode latent codes to data in the original units and sample shape.

        Parameters
        ----------
        X : array-like of shape (n_samples, latent_dim_)
            Latent codes, for example from :meth:`transform`.
        """
        check_is_fitted(self, "model_")
        codes, _ = to_float_array(X, name="codes")
        if codes.ndim != 2 or codes.shape[1] != self.latent_dim_:
            raise DataError(
                f"latent codes must have shape (n_samples, {self.latent_dim_}), got {codes.shape}; "
                "pass the output of transform()."
            )
        if not np.all(np.isfinite(codes)):
            raise DataError("latent codes contain NaN or infinite values; pass finite codes.")

        decoded = self._decode_codes(codes)
        return self._to_original_units(decoded)

    @torch.inference_mode()
    def _decode_codes(self, codes: np.ndarray) -> np.ndarray:
        model = self.model_.eval()
        device = next(model.parameters()).device
        return model.decode(torch.from_numpy(codes).to(device)).float().cpu().numpy()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the latent code's columns: ``z0``, ``z1``, ..."""
        check_is_fitted(self, "model_")
        return np.asarray([f"z{i}" for i in range(self.latent_dim_)], dtype=object)


def resolve_hidden_dims(hidden_dims: object, n_features: int, latent_dim: int) -> tuple[int, ...]:
    """Return the encoder's hidden widths, sizing them from the data when ``None``."""
    if hidden_dims is None:
        first = min(512, max(64, 1 << _ceil_log2(2 * n_features)))
        return tuple(max(width, latent_dim) for width in (first, first // 2))

    if isinstance(hidden_dims, (str, bytes)) or not isinstance(hidden_dims, Sequence):
        raise ConfigError(f"hidden_dims must be a sequence of positive integers or None, got {hidden_dims!r}.")
    bad = [w for w in hidden_dims if isinstance(w, bool) or not isinstance(w, numbers.Integral) or w < 1]
    if bad:
        raise ConfigError(
            f"hidden_dims must hold positive integers, got {list(hidden_dims)!r} (invalid: {bad!r})."
        )

    widths = tuple(int(w) for w in hidden_dims)
    narrow = [w for w in widths if w < latent_dim]
    if narrow:
        warnings.warn(
            f"hidden_dims {widths} has layers narrower than latent_dim={latent_dim} ({narrow}); "
            f"the narrowest layer ({min(narrow)} units) becomes the real bottleneck. Use widths "
            f"of at least {latent_dim}.",
            AekitWarning,
            stacklevel=5,
        )
    return widths


def _ceil_log2(value: int) -> int:
    """Smallest ``k`` with ``2**k >= value``, for ``value >= 1``."""
    return max(0, (int(value) - 1).bit_length())
