"""Variational autoencoder (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014).

The encoder outputs a diagonal Gaussian posterior q(z | x) = N(mu, exp(logvar)); a code
is drawn with the reparameterisation z = mu + exp(logvar / 2) * eps, eps ~ N(0, I), so
gradients flow through the draw. The decoder outputs the parameters of p(x | z):

- ``"bernoulli"``: one logit per feature, for data in [0, 1] such as pixels;
- ``"gaussian"``: a mean per feature and one variance shared by all features, fitted
  to the data instead of fixed by hand. In training it is the batch's maximum-likelihood
  value, the mean squared error of the decoder's means. Inference uses a running
  average of it, kept like batch normalisation's statistics. A variance learned by
  gradient steps would move too slowly: starting at 1 on data whose error is near
  0.01, the KL term dominates and the posterior collapses.

The encoder and decoder are a dense or a convolutional backbone, built from the same
blocks as :class:`~aekit.models.DenseAutoencoder` and :class:`~aekit.models.ConvAutoencoder`.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from ..exceptions import ConfigError
from ..losses import bernoulli_nll, gaussian_nll
from .base import Autoencoder, AutoencoderOutput
from .conv import check_channels, check_image_shape
from .layers import (
    ACTIVATIONS,
    check_bool,
    check_choice,
    check_dropout,
    check_positive_int,
    conv_decoder,
    conv_encoder_body,
    dense_decoder,
    dense_stack,
)

BACKBONES: tuple[str, ...] = ("dense", "conv")
# Weight of each training batch in the running average of the Gaussian decoder's log-variance.
VARIANCE_MOMENTUM = 0.1
# Floor on the Gaussian decoder's variance, so that a perfect fit keeps a finite likelihood.
MIN_VARIANCE = 1e-6
LIKELIHOODS: tuple[str, ...] = ("bernoulli", "gaussian")


@dataclasses.dataclass(frozen=True)
class VariationalConfig:
    """Architecture of a :class:`VariationalAutoencoder`.

    ``input_shape`` is one sample's shape: (n_features,) for tables, or (channels,
    height, width) for images. The ``"dense"`` backbone flattens any shape and uses
    ``hidden_dims``; the ``"conv"`` backbone needs images and uses ``channels``.
    """

    input_shape: tuple[int, ...]
    latent_dim: int
    backbone: str = "dense"
    hidden_dims: tuple[int, ...] = (512, 256)
    channels: tuple[int, ...] = (32, 64)
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = True
    likelihood: str = "bernoulli"

    def __post_init__(self) -> None:
        check_choice("backbone", self.backbone, BACKBONES)
        if self.backbone == "conv":
            check_image_shape(self.input_shape)
            check_channels(self.channels)
        elif not isinstance(self.input_shape, (tuple, list)) or not self.input_shape:
            raise ConfigError(f"input_shape must be a non-empty tuple of sizes, got {self.input_shape!r}.")
        for position, size in enumerate(self.input_shape):
            check_positive_int(f"input_shape[{position}]", size)
        check_positive_int("latent_dim", self.latent_dim)
        for position, width in enumerate(self.hidden_dims):
            check_positive_int(f"hidden_dims[{position}]", width)
        check_choice("activation", self.activation, sorted(ACTIVATIONS))
        check_choice("likelihood", self.likelihood, LIKELIHOODS)
        check_dropout(self.dropout)
        check_bool("batch_norm", self.batch_norm)

        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        object.__setattr__(self, "latent_dim", int(self.latent_dim))
        object.__setattr__(self, "hidden_dims", tuple(int(w) for w in self.hidden_dims))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "dropout", float(self.dropout))

    @property
    def input_dim(self) -> int:
        return math.prod(self.input_shape)


class VariationalAutoencoder(Autoencoder):
    """Gaussian-encoder VAE with a Bernoulli or Gaussian decoder.

    In training mode ``forward`` draws ``z`` from the posterior; in evaluation mode it
    uses the posterior mean ``mu``, so inference is deterministic. ``encode`` always
    returns ``mu``.

    Examples
    --------
    >>> import torch
    >>> from aekit.models import VariationalAutoencoder, VariationalConfig
    >>> model = VariationalAutoencoder(VariationalConfig(input_shape=(10,), latent_dim=2, hidden_dims=(8,)))
    >>> out = model.eval()(torch.rand(4, 10))
    >>> tuple(out.x_recon.shape), tuple(out.mu.shape), bool(torch.equal(out.z, out.mu))
    ((4, 10), (4, 2), True)
    """

    name = "vae"
    config_class = VariationalConfig
    flat_input = False

    def __init__(self, config: VariationalConfig) -> None:
        super().__init__(config)
        c = config

        if c.backbone == "conv":
            self.encoder, n_features = conv_encoder_body(c.input_shape, c.channels, c.activation, c.dropout, c.batch_norm)
            self.decoder = conv_decoder(c.latent_dim, c.input_shape, c.channels, c.activation, c.dropout, c.batch_norm)
        else:
            self.encoder = dense_stack([c.input_dim, *c.hidden_dims], c.activation, c.dropout, c.batch_norm)
            n_features = c.hidden_dims[-1] if c.hidden_dims else c.input_dim
            self.decoder = dense_decoder(c.latent_dim, c.hidden_dims, c.input_dim, c.activation, c.dropout, c.batch_norm)
        self.mu_head = nn.Linear(n_features, c.latent_dim)
        self.logvar_head = nn.Linear(n_features, c.latent_dim)

        if c.likelihood == "gaussian":
            # log sigma^2 of p(x | z) shared by all features, and the count of its updates.
            self.register_buffer("decoder_logvar", torch.zeros(1))
            self.register_buffer("decoder_logvar_updates", torch.zeros((), dtype=torch.long))

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.backbone == "conv":
            return self.encoder(x.reshape(x.shape[0], *self.config.input_shape))
        return self.encoder(x.reshape(x.shape[0], -1))

    def encode_distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the posterior's ``mu`` and ``logvar``, each of shape (batch, latent_dim)."""
        features = self._features(x)
        return self.mu_head(features), self.logvar_head(features)

    def reparameterize(
        self, mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw ``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_distribution(x)[0]  # (batch, latent_dim): the posterior mean

    def decoder_output(self, z: torch.Tensor) -> torch.Tensor:
        """Return the decoder's raw output: logits (Bernoulli) or means (Gaussian)."""
        return self.decoder(z)  # (batch, input_dim) or (batch, channels, height, width)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Return the mean of p(x | z)."""
        output = self.decoder_output(z)
        return torch.sigmoid(output) if self.config.likelihood == "bernoulli" else output

    def negative_log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Return -log p(x | z) per sample in nats, shape (batch,).

        In training mode a Gaussian decoder uses the batch's maximum-likelihood variance
        and updates its running average.
        """
        output = self.decoder_output(z).reshape(x.shape)
        if self.config.likelihood == "bernoulli":
            return bernoulli_nll(output, x)
        logvar = self._fit_decoder_logvar(x, output) if self.training else self.decoder_logvar
        return gaussian_nll(output, logvar, x)

    def _fit_decoder_logvar(self, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        # Detaching loses no gradient: at the optimal variance the loss's derivative
        # with respect to it is zero.
        mse = (x - mean).detach().square().mean()
        logvar = torch.log(mse.clamp_min(MIN_VARIANCE)).reshape(1)
        with torch.no_grad():
            # The first updates average cumulatively, so the running value is never the
            # initial unit variance once training has begun.
            momentum = max(VARIANCE_MOMENTUM, 1.0 / float(self.decoder_logvar_updates + 1))
            self.decoder_logvar.lerp_(logvar, momentum)
            self.decoder_logvar_updates += 1
        return logvar

    def forward(self, x: torch.Tensor) -> AutoencoderOutput:
        mu, logvar = self.encode_distribution(x)
        z = self.reparameterize(mu, logvar) if self.training else mu
        x_recon = self.decode(z).reshape(x.shape)
        return AutoencoderOutput(x_recon=x_recon, z=z, mu=mu, logvar=logvar)
