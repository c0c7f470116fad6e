"""``VariationalAutoEncoder``: the scikit-learn estimator around the VAE module."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

from .._seed import resolve_seed
from ..corruption import build_corruption
from ..exceptions import AekitWarning, ConfigError, DataError
from ..losses import kl_divergence, kl_divergence_per_unit
from ..models import VariationalAutoencoder, VariationalConfig
from ..models.layers import check_choice, check_integer, check_non_negative
from ..preprocessing import UNIT_RANGE_SCALINGS
from ..training import KLWarmup, VariationalObjective
from ..training.callbacks import Callback
from ._base import resolve_latent_dim
from .autoencoder import ARCHITECTURES, AutoEncoder, image_shape, resolve_channels, resolve_hidden_dims

# A latent unit is active when the variance over samples of its posterior mean exceeds
# this value (Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016).
ACTIVE_UNIT_THRESHOLD = 0.01


class VariationalAutoEncoder(AutoEncoder):
    """Variational autoencoder (VAE) and beta-VAE, as a scikit-learn estimator.

    The encoder outputs a Gaussian posterior q(z | x) with mean ``mu`` and log-variance
    ``logvar``; training draws codes with the reparameterisation trick and maximises
    the evidence lower bound (ELBO), E_q[log p(x | z)] - beta * KL(q(z | x) || N(0, I)),
    with the KL term in closed form (Kingma & Welling, ICLR 2014). ``beta`` > 1 gives
    the beta-VAE of Higgins et al. (ICLR 2017).

    Inference is deterministic: :meth:`transform` returns ``mu``, and reconstruction
    and scoring decode ``mu``, so the same input gets the same output in every call.
    :meth:`sample` draws new data from the prior and :meth:`interpolate` walks the
    latent space between two samples.

    Parameters
    ----------
    latent_dim : int or None, default=None
        Number of latent units. ``None`` uses the square root of the number of
        features, rounded, between 1 and 64.
    architecture : {"dense", "conv"}, default="dense"
        Backbone of the encoder and decoder, as in :class:`AutoEncoder`.
    hidden_dims : sequence of int or None, default=None
        Dense backbone: hidden widths from the input side, sized from the data when
        ``None`` as in :class:`AutoEncoder`.
    channels : sequence of int or None, default=None
        Convolutional backbone: output channels of the encoder's convolutions; ``None``
        uses (32, 64).
    activation : str, default="relu"
    dropout : float, default=0.0
    batch_norm : bool, default=True
    likelihood : {"auto", "bernoulli", "gaussian"}, default="auto"
        Decoder distribution p(x | z). ``"bernoulli"`` needs data scaled to [0, 1];
        ``"gaussian"`` has a learned variance shared by all features. ``"auto"`` picks
        Bernoulli when the scaling maps to [0, 1] (images by default) and Gaussian
        otherwise (tables by default).
    beta : float, default=1.0
        Weight of the KL term. 1 is the standard VAE; values above 1 trade
        reconstruction for a more factorised code.
    kl_warmup_epochs : int, default=0
        Raise the KL weight linearly from ``beta / kl_warmup_epochs`` to ``beta`` over
        this many epochs, so that the decoder learns to use the code before the KL
        term pulls the posterior to the prior. 0 uses ``beta`` from the start. Without
        validation rows, early stopping watches the training loss, which rises while
        the KL weight does, so keep the warm-up shorter than ``patience`` there.
    noise, noise_std, noise_fraction
        Input corruption during training, as in :class:`AutoEncoder` (a denoising VAE).
    scaling : {"auto", "standard", "minmax", "global-minmax", "none"}, default="auto"
    max_epochs, batch_size, learning_rate, validation_fraction, patience
        As in :class:`AutoEncoder`.
    early_stopping : bool, default=True
        Stop when the validation negative ELBO (with the KL weight at 1, whatever
        ``beta`` and the warm-up are) has not improved for ``patience`` epochs, and
        restore the best epoch's weights.
    random_state, device, verbose, timeline, callbacks
        As in :class:`AutoEncoder`.
    precision, compile, n_threads, distributed
        As in :class:`AutoEncoder`.
    checkpoint_dir, checkpoint_every, resume
        As in :class:`AutoEncoder`. The checkpoints also hold the state of the random
        number generator that draws the posterior samples.

    Attributes
    ----------
    model_ : VariationalAutoencoder
    likelihood_ : str
        The decoder distribution used, "bernoulli" or "gaussian".
    metrics_ : dict
        :class:`AutoEncoder`'s reconstruction metrics, which decode ``mu``. Then
        ``train_elbo``, ``val_elbo``, ``val_kl_divergence`` and
        ``val_reconstruction_nll`` in nats per sample, in scaled units, with one seeded
        posterior draw per sample. Last, ``kl_per_unit`` (the mean KL of each latent
        unit) and ``active_units``, both measured on the validation rows, or on the
        training rows when there are none.
    history_ : History
        ``val_loss`` holds the validation negative ELBO per epoch.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from aekit import VariationalAutoEncoder
    >>> X = load_digits().data.reshape(-1, 1, 8, 8)
    >>> vae = VariationalAutoEncoder(latent_dim=4, max_epochs=3, random_state=0).fit(X)
    >>> vae.transform(X[:2]).shape, vae.sample(5, random_state=0).shape
    ((2, 4), (5, 1, 8, 8))
    >>> vae.interpolate(X[0], X[1], steps=6).shape
    (6, 1, 8, 8)
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
        likelihood: str = "auto",
        beta: float = 1.0,
        kl_warmup_epochs: int = 0,
        noise: str = "none",
        noise_std: float = 0.1,
        noise_fraction: float = 0.25,
        scaling: str = "auto",
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
    ) -> None:
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.hidden_dims = hidden_dims
        self.channels = channels
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.likelihood = likelihood
        self.beta = beta
        self.kl_warmup_epochs = kl_warmup_epochs
        self.noise = noise
        self.noise_std = noise_std
        self.noise_fraction = noise_fraction
        self.scaling = scaling
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

    # --- building -----------------------------------------------------------------------

    def _resolve_output_activation(self, scaler_kind: str) -> str:
        """Resolve the likelihood, which sets a VAE's output; the base class's fit passes
        the result on to :meth:`_build_model`."""
        check_choice("likelihood", self.likelihood, ("auto", "bernoulli", "gaussian"))
        unit_range = scaler_kind in UNIT_RANGE_SCALINGS
        if self.likelihood == "auto":
            return "bernoulli" if unit_range else "gaussian"
        if self.likelihood == "bernoulli" and not unit_range:
            raise ConfigError(
                f"likelihood='bernoulli' needs data scaled to [0, 1], but scaling resolves to "
                f"{scaler_kind!r}; use scaling='minmax' (or 'global-minmax' for images), or "
                "likelihood='gaussian'."
            )
        return self.likelihood

    def _build_model(self, n_features: int, input_shape: tuple[int, ...], likelihood: str) -> VariationalAutoencoder:
        check_choice("architecture", self.architecture, ARCHITECTURES)
        build_corruption(self.noise, self.noise_std, self.noise_fraction)
        check_non_negative("beta", self.beta)
        check_integer("kl_warmup_epochs", self.kl_warmup_epochs, 0)

        latent_dim = resolve_latent_dim(self.latent_dim, n_features)
        conv = self.architecture == "conv"
        config = VariationalConfig(
            input_shape=image_shape(input_shape) if conv else input_shape,
            latent_dim=latent_dim,
            backbone=self.architecture,
            hidden_dims=() if conv else resolve_hidden_dims(self.hidden_dims, n_features, latent_dim),
            channels=resolve_channels(self.channels) if conv else (),
            activation=self.activation,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            likelihood=likelihood,
        )
        self.likelihood_ = likelihood
        model = VariationalAutoencoder(config)
        self._set_architecture_attributes(_backbone_widths(model.config_dict()))
        return model

    def _restore_extra(self, config: dict[str, Any]) -> None:
        model_config = config["model"]["config"]
        self.likelihood_ = model_config["likelihood"]
        self._set_architecture_attributes(_backbone_widths(model_config))

    def _build_objective(self, x_train: torch.Tensor) -> VariationalObjective:
        corruption = build_corruption(self.noise, self.noise_std, self.noise_fraction)
        if corruption is not None and corruption.kind == "salt-and-pepper":
            corruption.fit(x_train)
        return VariationalObjective(float(self.beta), corruption=corruption)

    def _training_callbacks(self) -> list[Callback]:
        return [KLWarmup(int(self.kl_warmup_epochs))] if self.kl_warmup_epochs else []

    def _scaled_errors(self, scaled: np.ndarray, loss: str | None = None) -> np.ndarray:
        # Reconstruction errors decode mu, with the mean squared error unless ``loss`` is given.
        return super()._scaled_errors(scaled, loss or "mse")

    # --- fitting ------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> VariationalAutoEncoder:
        """Train the VAE on ``X`` and warn if the posterior collapsed.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or images of shape
            (n_samples, channels, height, width)
        y : ignored

        Returns
        -------
        self
        """
        super().fit(X, y)
        self._warn_if_collapsed()
        return self

    def _compute_metrics(self, scaled: np.ndarray, train_rows: np.ndarray, val_rows: np.ndarray) -> dict[str, Any]:
        metrics = super()._compute_metrics(scaled, train_rows, val_rows)
        metrics["train_elbo"] = self._scaled_posterior_summary(scaled[train_rows])["elbo"]
        summary = self._scaled_posterior_summary(scaled[val_rows] if len(val_rows) else scaled[train_rows])
        for name in ("elbo", "kl_divergence", "reconstruction_nll"):
            metrics[f"val_{name}"] = summary[name] if len(val_rows) else None
        metrics["kl_per_unit"] = summary["kl_per_unit"]
        metrics["active_units"] = summary["active_units"]
        return metrics

    def posterior_summary(self, X: Any) -> dict[str, Any]:
        """Summarise the fit of the VAE on ``X``, in nats per sample averaged over ``X``.

        Returns
        -------
        dict
            ``elbo``, its two parts ``reconstruction_nll`` (-E_q[log p(x | z)], one
            seeded posterior draw per sample) and ``kl_divergence``, then
            ``kl_per_unit`` (a list with the KL of each latent unit) and
            ``active_units``, the number of units whose posterior mean varies over the
            samples of ``X`` by more than 0.01 (Burda et al., 2016). Few active units
            and a KL near zero mean the posterior collapsed onto the prior.
        """
        return self._scaled_posterior_summary(self._check_inference_data(X, when="scoring"))

    def _scaled_posterior_summary(self, scaled: np.ndarray) -> dict[str, Any]:
        elbo = float(np.mean(self._scaled_elbo(scaled, n_samples=1, seed=self.seed_), dtype=np.float64))
        mu, logvar = self._posterior(scaled)
        kl_per_unit = kl_divergence_per_unit(mu, logvar).double().mean(dim=0)
        kl = float(kl_per_unit.sum())
        return {
            "elbo": elbo,
            "reconstruction_nll": -elbo - kl,
            "kl_divergence": kl,
            "kl_per_unit": [float(v) for v in kl_per_unit],
            "active_units": count_active_units(mu),
        }

    def _warn_if_collapsed(self) -> None:
        if self.metrics_["active_units"] > 0:
            return
        kl_per_unit = self.metrics_["kl_per_unit"]
        warnings.warn(
            f"posterior collapse: 0 of {self.latent_dim_} latent units are active (variance of mu "
            f"over samples above {ACTIVE_UNIT_THRESHOLD}), the KL term is {sum(kl_per_unit):.4g} nats "
            f"per sample and at most {max(kl_per_unit):.4g} for one unit, so the decoder ignores "
            f"the code. Lower beta (now {self.beta}), set kl_warmup_epochs, or train longer.",
            AekitWarning,
            stacklevel=3,
        )

    # --- inference ----------------------------------------------------------------------

    def _posterior(self, scaled: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the posterior ``mu`` and ``logvar`` of scaled rows, on the CPU."""
        both = self._batched(scaled, lambda x: torch.cat(self.model_.encode_distribution(x), dim=1))
        mu, logvar = np.split(both, 2, axis=1)
        return torch.from_numpy(mu), torch.from_numpy(logvar)

    def _scaled_elbo(self, scaled: np.ndarray, n_samples: int, seed: int) -> np.ndarray:
        generator = torch.Generator(device=next(self.model_.parameters()).device).manual_seed(seed)

        def step(x: torch.Tensor) -> torch.Tensor:
            mu, logvar = self.model_.encode_distribution(x)
            nll = torch.zeros(len(x), device=x.device)
            for _ in range(n_samples):
                z = self.model_.reparameterize(mu, logvar, generator=generator)
                nll += self.model_.negative_log_likelihood(x, z)
            return -(nll / n_samples + kl_divergence(mu, logvar))

        return self._batched(scaled, step)

    def elbo(self, X: Any, *, n_samples: int = 1, random_state: int | None = 0) -> np.ndarray:
        """Estimate the evidence lower bound (ELBO) of each sample, in nats.

        The ELBO is E_q[log p(x | z)] - KL(q(z | x) || p(z)), a lower bound on log p(x).

        The expectation is estimated with ``n_samples`` draws from the posterior, seeded
        by ``random_state``, so the same call gives the same values. The likelihood is
        that of the scaled data the model trains on.

        Returns
        -------
        ndarray of shape (n_samples_X,)
        """
        check_integer("n_samples", n_samples, 1)
        scaled = self._check_inference_data(X, when="scoring")
        return self._scaled_elbo(scaled, int(n_samples), resolve_seed(random_state))

    def sample(self, n_samples: int = 1, *, random_state: int | None = None) -> np.ndarray:
        """Draw new data: codes from the prior N(0, I), decoded to the mean of p(x | z).

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int or None, default=None
            Seed for the codes; ``None`` draws a fresh seed.

        Returns
        -------
        ndarray of shape (n_samples, *input_shape_), in the original units
        """
        check_is_fitted(self, "model_")
        check_integer("n_samples", n_samples, 1)
        generator = torch.Generator().manual_seed(resolve_seed(random_state))
        codes = torch.randn(int(n_samples), self.latent_dim_, generator=generator)
        return self._to_original_units(self._decode_codes(codes.numpy()))

    def interpolate(self, a: Any, b: Any, steps: int = 10) -> np.ndarray:
        """Decode ``steps`` evenly spaced points on the line between the codes of ``a`` and ``b``.

        Parameters
        ----------
        a, b : array-like or one-row DataFrame
            One sample each, of the shape the model was trained on (or flattened).
        steps : int, default=10
            Number of points, both ends included; at least 2.

        Returns
        -------
        ndarray of shape (steps, *input_shape_), in the original units; the first
        row decodes the code (``mu``) of ``a`` and the last that of ``b``.
        """
        check_is_fitted(self, "model_")
        check_integer("steps", steps, 2)
        ends = [self.transform(self._one_sample(point, name)) for point, name in ((a, "a"), (b, "b"))]
        weights = np.linspace(0.0, 1.0, int(steps), dtype=np.float32)[:, None]  # (steps, 1)
        codes = (1 - weights) * ends[0] + weights * ends[1]  # (steps, latent_dim)
        return self._to_original_units(self._decode_codes(codes.astype(np.float32)))

    def _one_sample(self, point: Any, name: str) -> Any:
        if isinstance(point, pd.Series):
            return point.to_frame().T
        if isinstance(point, pd.DataFrame):
            if len(point) != 1:
                raise DataError(f"{name} must be one sample, got a DataFrame of {len(point)} rows.")
            return point
        array = np.asarray(point)
        if array.size != self.n_features_in_:
            raise DataError(
                f"{name} must be one sample of {self.n_features_in_} values (shape {self.input_shape_}), "
                f"got shape {array.shape}; pass a single row or image."
            )
        return array.reshape(1, *self.input_shape_)


def count_active_units(mu: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """Count latent units whose posterior mean varies over samples by more than ``threshold``.

    ``mu`` has shape (n_samples, latent_dim); a unit is active when Var_x(E_q[z_u | x])
    exceeds the threshold. One sample has no variance, so it counts no unit as active.
    """
    if len(mu) < 2:
        return 0
    return int((mu.double().var(dim=0) > threshold).sum())


def _backbone_widths(model_config: dict[str, Any]) -> dict[str, Any]:
    """Keep only the widths of the backbone in use: ``hidden_dims`` or ``channels``."""
    name = "channels" if model_config["backbone"] == "conv" else "hidden_dims"
    return {name: model_config[name]}
