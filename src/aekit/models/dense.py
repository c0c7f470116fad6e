"""Fully connected (dense) autoencoder.

The encoder is an MLP from the input down to a linear bottleneck of ``latent_dim``
units; the decoder mirrors it. A linear code layer follows Hinton & Salakhutdinov,
"Reducing the Dimensionality of Data with Neural Networks", Science 313 (2006).
"""

from __future__ import annotations

import dataclasses
import numbers

import torch
from torch import nn

from ..exceptions import ConfigError
from .base import Autoencoder
from .layers import ACTIVATIONS, OUTPUT_ACTIVATIONS, check_choice, dense_stack


@dataclasses.dataclass(frozen=True)
class DenseConfig:
    """Architecture of a :class:`DenseAutoencoder`.

    ``hidden_dims`` lists the encoder's hidden widths from the input side; the
    decoder uses them in reverse order.
    """

    input_dim: int
    latent_dim: int
    hidden_dims: tuple[int, ...] = (128, 64)
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = True
    output_activation: str = "identity"

    def __post_init__(self) -> None:
        _check_positive_int("input_dim", self.input_dim)
        _check_positive_int("latent_dim", self.latent_dim)
        for position, width in enumerate(self.hidden_dims):
            _check_positive_int(f"hidden_dims[{position}]", width)
        check_choice("activation", self.activation, sorted(ACTIVATIONS))
        check_choice("output_activation", self.output_activation, sorted(OUTPUT_ACTIVATIONS))
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, numbers.Real) or not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be a number in [0, 1), got {self.dropout!r}.")
        if not isinstance(self.batch_norm, bool):
            raise ConfigError(f"batch_norm must be True or False, got {self.batch_norm!r}.")

        # Store plain Python numbers (numpy scalars from parameter grids are not JSON-ready).
        object.__setattr__(self, "input_dim", int(self.input_dim))
        object.__setattr__(self, "latent_dim", int(self.latent_dim))
        object.__setattr__(self, "hidden_dims", tuple(int(w) for w in self.hidden_dims))
        object.__setattr__(self, "dropout", float(self.dropout))


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")


class DenseAutoencoder(Autoencoder):
    """Dense autoencoder on inputs of shape (batch, input_dim).

    A plain ``torch.nn.Module``: ``encoder`` and ``decoder`` are ``nn.Sequential``
    stacks that can be reused on their own.

    Examples
    --------
    >>> import torch
    >>> from aekit.models import DenseAutoencoder, DenseConfig
    >>> model = DenseAutoencoder(DenseConfig(input_dim=20, latent_dim=3, hidden_dims=(16, 8)))
    >>> out = model(torch.randn(5, 20))
    >>> tuple(out.x_recon.shape), tuple(out.z.shape)
    ((5, 20), (5, 3))
    """

    name = "dense"
    config_class = DenseConfig

    def __init__(self, config: DenseConfig) -> None:
        super().__init__(config)
        c = config
        encoder_dims = [c.input_dim, *c.hidden_dims]
        decoder_dims = [c.latent_dim, *reversed(c.hidden_dims)]

        self.encoder = dense_stack(encoder_dims, c.activation, c.dropout, c.batch_norm)
        self.encoder.append(nn.Linear(encoder_dims[-1], c.latent_dim))

        self.decoder = dense_stack(decoder_dims, c.activation, c.dropout, c.batch_norm)
        self.decoder.append(nn.Linear(decoder_dims[-1], c.input_dim))
        self.decoder.append(OUTPUT_ACTIVATIONS[c.output_activation]())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (batch, latent_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (batch, input_dim)
