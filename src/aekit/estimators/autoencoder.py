"""``AutoEncoder``: the scikit-learn estimator around the dense and convolutional autoencoders."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..corruption import build_corruption
from ..data.schema import DEFAULT_MAX_CATEGORIES, TableSchema
from ..data.validation import to_float_array
from ..exceptions import AekitWarning, ConfigError, DataError
from ..models import Autoencoder, ConvAutoencoder, ConvConfig, DenseAutoencoder, DenseConfig
from ..models.tabular import TabularAutoencoder, TabularConfig
from ..models.layers import LATENT_ACTIVATIONS, check_choice, check_non_negative, is_real_number
from ..training import ReconstructionObjective
from ..training.objectives import SPARSITY_KINDS
from ._base import BaseAutoEncoder, resolve_latent_dim
from ._tabular import column_weights, decode_codes, impute_table

ARCHITECTURES: tuple[str, ...] = ("dense", "conv")
# Output channels of the convolutions when ``channels`` is None: two stride-2 layers.
DEFAULT_CHANNELS: tuple[int, ...] = (32, 64)


class AutoEncoder(TransformerMixin, BaseAutoEncoder):
    """Autoencoder for dimensionality reduction, reconstruction, denoising and scoring.

    An encoder compresses each sample to a latent code of ``latent_dim`` units and a
    mirrored decoder reconstructs it. The encoder is dense (tables, or images
    flattened) or convolutional (images). Denoising, sparsity and contraction are
    pieces switched on by parameters and combine freely: a denoising sparse
    convolutional autoencoder is ``AutoEncoder(architecture="conv", noise="masking",
    sparsity="l1")``. Preprocessing is fitted on the training rows and stored with the
    model; outputs come back in the original units.

    Parameters
    ----------
    latent_dim : int or None, default=None
        Size of the latent code (the bottleneck). ``None`` uses the square root of the
        number of features, rounded, between 1 and 64.
    architecture : {"dense", "conv"}, default="dense"
        ``"dense"`` flattens each sample and uses fully connected layers.
        ``"conv"`` needs images, shaped (n_samples, channels, height, width) or
        (n_samples, height, width), of any size: strided convolutions lead to a dense
        latent code and transposed convolutions back to the input's exact size.
    hidden_dims : sequence of int or None, default=None
        Dense architecture: widths of the encoder's hidden layers, from the input side;
        the decoder mirrors them. ``None`` sizes two layers from the data: the first is
        twice the number of features rounded up to a power of two, between 64 and 512,
        and the second is half of it. ``()`` gives a shallow autoencoder with no hidden
        layer.
    channels : sequence of int or None, default=None
        Convolutional architecture: output channels of the encoder's convolutions, each
        of which halves the height and width. ``None`` uses (32, 64).
    activation : str, default="relu"
        Hidden-layer activation: "relu", "leaky_relu", "elu", "selu", "gelu", "silu",
        "tanh" or "sigmoid".
    dropout : float, default=0.0
        Dropout probability after each hidden layer, in [0, 1).
    batch_norm : bool, default=True
        Batch normalisation after each hidden layer's linear map. It regularises and
        speeds up training; at inference it uses running statistics, so a sample's
        output does not depend on the other samples in the call. With a sparsity or
        contractive penalty, the decoder's first layer, which reads the code, has none:
        there it would let the encoder shrink the code's scale to meet the penalty.
    output_activation : {"auto", "sigmoid", "identity"}, default="auto"
        ``"auto"`` uses a sigmoid when the data is min-max scaled to [0, 1] and the
        identity otherwise.
    latent_activation : {"auto", "identity", "sigmoid", "relu", "tanh"}, default="auto"
        Activation of the code layer. ``"auto"`` is ``"sigmoid"`` with
        ``sparsity="kl"``, ``"relu"`` with ``sparsity="l1"`` and ``"identity"`` (a
        linear code) otherwise.
    tied_weights : bool, default=False
        Dense architecture: each decoder layer uses the transposed weight matrix of its
        mirror encoder layer, which halves the weights to learn.
    noise : {"none", "gaussian", "masking", "salt-and-pepper"}, default="none"
        Input corruption during training only, for a denoising autoencoder: the model
        learns to reconstruct the clean input from a corrupted copy. Encoding,
        reconstruction and scoring never corrupt. ``"gaussian"`` adds noise of standard
        deviation ``noise_std``; ``"masking"`` sets a share ``noise_fraction`` of the
        values to 0; ``"salt-and-pepper"`` sets that share to the feature's training
        minimum or maximum. Noise acts on the scaled values ([0, 1] for images,
        standardised columns for tables).
    noise_std : float, default=0.1
        Standard deviation of Gaussian noise, in scaled units.
    noise_fraction : float, default=0.25
        Share of values that masking or salt-and-pepper noise corrupts, in [0, 1].
    sparsity : {"none", "l1", "kl"}, default="none"
        Latent sparsity penalty. ``"l1"`` adds ``sparsity_weight`` times the sum of
        absolute code activations (averaged over the batch). ``"kl"`` adds
        ``sparsity_weight`` times the sum over code units of the KL divergence between
        ``sparsity_target`` and the unit's mean activation over the batch, and needs
        sigmoid codes.
    sparsity_weight : float, default=1e-3
        Weight of the sparsity penalty against the reconstruction loss.
    sparsity_target : float, default=0.05
        Target mean activation of each code unit for ``sparsity="kl"``, in (0, 1).
    contractive_weight : float, default=0.0
        Weight of the contractive penalty, the squared Frobenius norm of the encoder's
        Jacobian averaged over the batch; 0 turns it off. A single sigmoid encoder
        layer (``hidden_dims=()``, ``latent_activation="sigmoid"``) uses the closed
        form and trains at the speed of a plain model. Other encoders get exact
        Jacobians by autograd, which costs about ``latent_dim`` extra backward passes
        per step.
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
        best epoch's weights. Penalties and noise are left out of the validation
        loss, which measures the reconstruction of clean inputs.
    patience : int, default=10
        Epochs without improvement before early stopping.
    random_state : int, RandomState or None, default=None
        Seed for the split, weight initialisation, shuffling and dropout. The same
        integer gives bit-identical results on CPU.
    device : str, default="auto"
        "auto" (CUDA, then Apple MPS, then CPU), "cpu", "cuda", "cuda:N" or "mps".
    verbose : int, default=0
        0 is silent, 1 shows a progress bar (in a terminal), 2 also logs each epoch.
    timeline : int, default=0
        Number of validation inputs (training inputs without validation rows) whose
        reconstructions are recorded at epochs 1, 2, 4, 8, ... and at the end, for
        :func:`aekit.plot.timeline` and the HTML report. 0 records nothing.
    callbacks : list of aekit.training.Callback or None, default=None
        Extra callbacks the trainer calls at each epoch and batch, for example
        :class:`aekit.training.TensorBoardLogger`.
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
    checkpoint_dir : str, path or None, default=None
        Folder for training checkpoints: the weights, optimizer, random number
        generator states, epoch, history and early stopping state, as safetensors and
        JSON. Only the newest checkpoint is kept; a run with ``resume=False`` first
        removes the checkpoints already there. None writes none.
    checkpoint_every : int, default=1
        Epochs between checkpoints; the last epoch always gets one.
    resume : bool, default=False
        Continue from the newest checkpoint in ``checkpoint_dir`` (or train from the
        first epoch when there is none). ``fit`` must get the same data and
        parameters, except those of how the run executes (``max_epochs``,
        ``verbose``, ``device``, ``n_threads``, ``compile``, ``distributed`` and
        ``callbacks``). On CPU the final weights equal those of an uninterrupted run,
        bit for bit. With ``random_state=None`` the seed stored in the checkpoint is
        used.
    categorical_columns : list of str or int, or None, default=None
        Columns to treat as categorical besides those of object, string, category or
        bool dtype: names for a DataFrame, positions for an array. Categorical columns
        are embedded inside the model (a learned embedding sized from the
        cardinality) and reconstructed through a softmax head with cross-entropy,
        divided by the column's training entropy so that categorical and numeric
        (standardised, squared error) columns weigh alike. A value never seen in
        training maps to an "unknown" slot and gets a large reconstruction error.
    max_categories : int, default=100
        Categories kept per categorical column; rarer values share one "other" slot.
    impute : {None, "mean", "model"}, default=None
        Missing values (NaN, None). ``None`` rejects them. ``"mean"`` fills them with
        the training means and most frequent categories, at fit and at every later
        call. ``"model"`` masks them out of the loss, gives the encoder a
        missing-indicator input, hides a random 20% of the present cells from the
        encoder at each training step, and lets :meth:`impute_missing` fill gaps from the
        reconstructions.

    Attributes
    ----------
    model_ : DenseAutoencoder or ConvAutoencoder
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
        Dense architecture only.
    channels_ : tuple of int
        Convolutional architecture only.
    seed_ : int
        The seed actually used, drawn at random when ``random_state`` is None.
    schema_ : TableSchema
        Only for tables fitted with categorical columns or ``impute`` set: each
        column's kind, dtype, scaling and categories, stored in the model file and
        checked at every later call.
    timeline_ : dict or None
        With ``timeline`` > 0: ``epochs`` (n_records,), ``inputs`` (timeline, ...)
        and ``reconstructions`` (n_records, timeline, ...), in the original units.

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
    >>> conv = AutoEncoder(latent_dim=8, architecture="conv", noise="masking", max_epochs=2, random_state=0)
    >>> conv.fit(X.reshape(-1, 1, 8, 8)).denoise(X[:3].reshape(-1, 1, 8, 8)).shape
    (3, 1, 8, 8)
    """

    def __init__(
        self,
        latent_dim: int | None = None,
        *,
        architecture: str = "dense",
        hidden_dims: Sequence[int] | None = None,
        channels: Sequence[int] | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = True,
        output_activation: str = "auto",
        latent_activation: str = "auto",
        tied_weights: bool = False,
        noise: str = "none",
        noise_std: float = 0.1,
        noise_fraction: float = 0.25,
        sparsity: str = "none",
        sparsity_weight: float = 1e-3,
        sparsity_target: float = 0.05,
        contractive_weight: float = 0.0,
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
        timeline: int = 0,
        callbacks: list[Any] | None = None,
        precision: str = "fp32",
        compile: bool = False,
        n_threads: int | None = None,
        distributed: str | bool = "auto",
        checkpoint_dir: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        categorical_columns: Sequence[str | int] | None = None,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        impute: str | None = None,
    ) -> None:
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.hidden_dims = hidden_dims
        self.channels = channels
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.output_activation = output_activation
        self.latent_activation = latent_activation
        self.tied_weights = tied_weights
        self.noise = noise
        self.noise_std = noise_std
        self.noise_fraction = noise_fraction
        self.sparsity = sparsity
        self.sparsity_weight = sparsity_weight
        self.sparsity_target = sparsity_target
        self.contractive_weight = contractive_weight
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
        self.timeline = timeline
        self.callbacks = callbacks
        self.precision = precision
        self.compile = compile
        self.n_threads = n_threads
        self.distributed = distributed
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.categorical_columns = categorical_columns
        self.max_categories = max_categories
        self.impute = impute

    def _build_model(self, n_features: int, input_shape: tuple[int, ...], output_activation: str) -> Autoencoder:
        check_choice("architecture", self.architecture, ARCHITECTURES)
        latent_activation = self._resolve_latent_activation()
        self._check_pieces()
        latent_dim = resolve_latent_dim(self.latent_dim, n_features)

        if self.architecture == "conv":
            if self.tied_weights:
                raise ConfigError(
                    "tied_weights=True needs architecture='dense'; convolutional decoders learn their "
                    "own weights. Set tied_weights=False or architecture='dense'."
                )
            config = ConvConfig(
                input_shape=image_shape(input_shape),
                latent_dim=latent_dim,
                channels=resolve_channels(self.channels),
                activation=self.activation,
                dropout=self.dropout,
                batch_norm=self.batch_norm,
                output_activation=output_activation,
                latent_activation=latent_activation,
                code_batch_norm=not self._penalises_code(),
            )
            model: Autoencoder = ConvAutoencoder(config)
        else:
            config = DenseConfig(
                input_dim=n_features,
                latent_dim=latent_dim,
                hidden_dims=resolve_hidden_dims(self.hidden_dims, n_features, latent_dim),
                activation=self.activation,
                dropout=self.dropout,
                batch_norm=self.batch_norm,
                output_activation=output_activation,
                latent_activation=latent_activation,
                code_batch_norm=not self._penalises_code(),
                tied_weights=self.tied_weights,
            )
            model = DenseAutoencoder(config)
        self._set_architecture_attributes(model.config_dict())
        return model

    def _build_table_model(self, schema: TableSchema) -> TabularAutoencoder:
        self._check_table_pieces()
        latent_activation = self._resolve_latent_activation()
        latent_dim = resolve_latent_dim(self.latent_dim, len(schema.columns))
        config = TabularConfig(
            cardinalities=schema.cardinalities(),
            column_weights=column_weights(schema),
            latent_dim=latent_dim,
            activation=self.activation,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            latent_activation=latent_activation,
            missing_indicators=self.impute == "model",
            # A value absent from n training rows had at most a 1 in n + 1 chance.
            unseen_cross_entropy=math.log(schema.n_rows + 1),
        )
        hidden_dims = resolve_hidden_dims(self.hidden_dims, config.input_dim, latent_dim)
        model = TabularAutoencoder(dataclasses.replace(config, hidden_dims=hidden_dims))
        self._set_architecture_attributes(model.config_dict())
        return model

    def _check_table_pieces(self) -> None:
        """Reject parameters that tables with a column schema do not support yet."""
        unsupported = {
            "architecture": (self.architecture, "dense"),
            "noise": (self.noise, "none"),
            "sparsity": (self.sparsity, "none"),
            "contractive_weight": (self.contractive_weight, 0.0),
            "tied_weights": (self.tied_weights, False),
            "loss": (self.loss, "mse"),
            "scaling": (self.scaling, "auto"),
            "output_activation": (self.output_activation, "auto"),
        }
        changed = [f"{name}={value!r}" for name, (value, default) in unsupported.items() if value != default]
        if changed:
            raise ConfigError(
                f"tables with categorical columns or impute set support only the defaults of "
                f"{', '.join(unsupported)}; got {', '.join(changed)}. Reset them, or one-hot encode "
                "the categorical columns and fill missing values yourself."
            )

    def _resolve_latent_activation(self) -> str:
        check_choice("sparsity", self.sparsity, SPARSITY_KINDS)
        check_choice("latent_activation", self.latent_activation, ("auto", *LATENT_ACTIVATIONS))
        if self.latent_activation == "auto":
            return {"kl": "sigmoid", "l1": "relu"}.get(self.sparsity, "identity")
        if self.sparsity == "kl" and self.latent_activation != "sigmoid":
            raise ConfigError(
                f"sparsity='kl' needs codes in (0, 1), but latent_activation={self.latent_activation!r}; "
                "use latent_activation='sigmoid' or 'auto', or sparsity='l1'."
            )
        return self.latent_activation

    def _penalises_code(self) -> bool:
        return self.sparsity != "none" or self.contractive_weight > 0

    def _check_pieces(self) -> None:
        """Validate the noise, sparsity and contractive parameters before any training."""
        build_corruption(self.noise, self.noise_std, self.noise_fraction)
        check_non_negative("sparsity_weight", self.sparsity_weight)
        check_non_negative("contractive_weight", self.contractive_weight)
        if not is_real_number(self.sparsity_target) or not 0 < self.sparsity_target < 1:
            raise ConfigError(f"sparsity_target must be a number in (0, 1), got {self.sparsity_target!r}.")
        if not isinstance(self.tied_weights, bool):
            raise ConfigError(f"tied_weights must be True or False, got {self.tied_weights!r}.")

    def _set_architecture_attributes(self, model_config: dict[str, Any]) -> None:
        """Set ``hidden_dims_`` or ``channels_`` from the model's config, removing the other."""
        for name in ("hidden_dims", "channels"):
            if name in model_config:
                setattr(self, f"{name}_", tuple(int(w) for w in model_config[name]))
            elif hasattr(self, f"{name}_"):
                delattr(self, f"{name}_")

    def _restore_extra(self, config: dict[str, Any]) -> None:
        self._set_architecture_attributes(config["model"]["config"])

    def _build_objective(self, x_train: torch.Tensor) -> ReconstructionObjective:
        corruption = build_corruption(self.noise, self.noise_std, self.noise_fraction)
        if corruption is not None and corruption.kind == "salt-and-pepper":
            # A streamed training set is no tensor; its source carries each feature's range.
            corruption.fit(x_train if isinstance(x_train, torch.Tensor) else x_train.feature_range)
        return ReconstructionObjective(
            self.loss,
            corruption=corruption,
            sparsity=self.sparsity,
            sparsity_weight=float(self.sparsity_weight),
            sparsity_target=float(self.sparsity_target),
            contractive_weight=float(self.contractive_weight),
        )

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

        A model fitted on a table with a column schema returns a DataFrame with the
        training column names and dtypes (categories as their most likely label).
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

        if getattr(self, "schema_", None) is not None:
            return decode_codes(self, codes)
        decoded = self._decode_codes(codes)
        return self._to_original_units(decoded)

    def impute_missing(self, X: Any) -> Any:
        """Fill the missing cells (NaN, None) of ``X``; present cells are returned unchanged.

        With ``impute="model"`` a numeric gap gets its reconstruction and a categorical
        gap its most likely category, both predicted from the row's present cells.
        With ``impute="mean"`` gaps get the training mean or most frequent category.

        Returns
        -------
        DataFrame with the training columns and dtypes, or an array when fitted on one.
        """
        check_is_fitted(self, "model_")
        if getattr(self, "schema_", None) is None:
            raise ConfigError(
                "impute_missing() needs a model fitted with impute='model' or impute='mean'; this one was "
                "fitted with impute=None. Set impute and fit again."
            )
        return impute_table(self, X)

    @torch.inference_mode()
    def _decode_codes(self, codes: np.ndarray) -> np.ndarray:
        model = self.model_.eval()
        device = next(model.parameters()).device
        return model.decode(torch.from_numpy(codes).to(device)).float().cpu().numpy()

    def denoise(self, X: Any) -> np.ndarray:
        """Return clean reconstructions of noisy ``X``, in the original units and shape.

        The input is encoded and decoded as given, without adding noise. A model trained
        with ``noise`` set has learned to map corrupted inputs back to clean ones. A
        model trained without noise only reconstructs its input, so this method warns.
        """
        check_is_fitted(self, "model_")
        if self.noise == "none":
            warnings.warn(
                f"this {type(self).__name__} was trained with noise='none', so denoise() returns its "
                "plain reconstruction; train with noise='masking', 'gaussian' or 'salt-and-pepper' "
                "to learn to remove noise.",
                AekitWarning,
                stacklevel=2,
            )
        return self.reconstruct(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The network computes in float32 whatever the input dtype, so codes are float32.
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the latent code's columns: ``z0``, ``z1``, ..."""
        check_is_fitted(self, "model_")
        return np.asarray([f"z{i}" for i in range(self.latent_dim_)], dtype=object)


def resolve_hidden_dims(hidden_dims: object, n_features: int, latent_dim: int) -> tuple[int, ...]:
    """Return the encoder's hidden widths, sizing them from the data when ``None``.

    Raises ``ConfigError`` for widths below 1; warns about widths that grow towards the
    latent code, which train but rarely help.
    """
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
    widening = [(a, b) for a, b in zip(widths, widths[1:]) if b > a]
    if widening:
        first, second = widening[0]
        warnings.warn(
            f"hidden_dims {widths} widen from {first} to {second} units; an encoder usually narrows "
            f"from the input towards the latent code, so list the widths from the input side in "
            f"non-increasing order, e.g. {tuple(sorted(widths, reverse=True))}.",
            AekitWarning,
            stacklevel=5,
        )
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


def resolve_channels(channels: object) -> tuple[int, ...]:
    """Return the convolutions' output channels, (32, 64) when ``None``."""
    if channels is None:
        return DEFAULT_CHANNELS
    if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or not channels:
        raise ConfigError(f"channels must be a non-empty sequence of positive integers or None, got {channels!r}.")
    bad = [c for c in channels if isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 1]
    if bad:
        raise ConfigError(f"channels must hold positive integers, got {list(channels)!r} (invalid: {bad!r}).")
    return tuple(int(c) for c in channels)


def image_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Return one sample's (channels, height, width); a (height, width) sample is grey."""
    if len(input_shape) == 2:
        return (1, *input_shape)
    if len(input_shape) == 3:
        return input_shape
    raise ConfigError(
        f"architecture='conv' needs images of shape (n_samples, channels, height, width) or "
        f"(n_samples, height, width), but each sample has shape {input_shape}; use "
        "architecture='dense' for tables."
    )


def _ceil_log2(value: int) -> int:
    """Smallest ``k`` with ``2**k >= value``, for ``value >= 1``."""
    return max(0, (int(value) - 1).bit_length())
