"""Fully connected (dense) autoencoder.

The encoder is an MLP from the input down to a linear bottleneck of ``latent_dim``
units; the decoder mirrors it. A linear code layer follows Hinton & Salakhutdinov,
"Reducing the Dimensionality of Data with Neural Networks", Science 313 (2006).
"""

from __future__ import annotations

import dataclasses

import torch

from .base import Autoencoder
from .layers import (
    ACTIVATIONS,
    LATENT_ACTIVATIONS,
    OUTPUT_ACTIVATIONS,
    check_bool,
    check_choice,
    check_dropout,
    check_positive_int,
    dense_decoder,
    dense_encoder,
    tie_decoder_weights,
)


@dataclasses.dataclass(frozen=True)
class DenseConfig:
    """Architecture of a :class:`DenseAutoencoder`.

    ``hidden_dims`` lists the encoder's hidden widths from the input side; the
    decoder uses them in reverse order. ``latent_activation`` follows the code layer.
    ``code_batch_norm=False`` leaves batch normalisation out of the decoder's first
    layer, which reads the code, so that the code's scale matters to the decoder (see
    :func:`~aekit.models.layers.drop_code_batch_norm`).
    ``tied_weights`` makes each decoder layer use the transposed weight of its mirror
    encoder layer (with its own bias).
    """

    input_dim: int
    latent_dim: int
    hidden_dims: tuple[int, ...] = (128, 64)
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = True
    output_activation: str = "identity"
    latent_activation: str = "identity"
    code_batch_norm: bool = True
    tied_weights: bool = False

    def __post_init__(self) -> None:
        check_positive_int("input_dim", self.input_dim)
        check_positive_int("latent_dim", self.latent_dim)
        for position, width in enumerate(self.hidden_dims):
            check_positive_int(f"hidden_dims[{position}]", width)
        check_choice("activation", self.activation, sorted(ACTIVATIONS))
        check_choice("output_activation", self.output_activation, sorted(OUTPUT_ACTIVATIONS))
        check_choice("latent_activation", self.latent_activation, sorted(LATENT_ACTIVATIONS))
        check_dropout(self.dropout)
        check_bool("batch_norm", self.batch_norm)
        check_bool("code_batch_norm", self.code_batch_norm)
        check_bool("tied_weights", self.tied_weights)

        # Store plain Python numbers (numpy scalars from parameter grids are not JSON-ready).
        object.__setattr__(self, "input_dim", int(self.input_dim))
        object.__setattr__(self, "latent_dim", int(self.latent_dim))
        object.__setattr__(self, "hidden_dims", tuple(int(w) for w in self.hidden_dims))
        object.__setattr__(self, "dropout", float(self.dropout))


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
        self.encoder = dense_encoder(
            c.input_dim, c.hidden_dims, c.latent_dim, c.activation, c.dropout, c.batch_norm, c.latent_activation
        )
        self.decoder = dense_decoder(
            c.latent_dim, c.hidden_dims, c.input_dim, c.activation, c.dropout, c.batch_norm, c.code_batch_norm
        )
        self.decoder.append(OUTPUT_ACTIVATIONS[c.output_activation]())
        if c.tied_weights:
            tie_decoder_weights(self.encoder, self.decoder)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (batch, latent_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (batch, input_dim)

    def sigmoid_encoder_weight(self) -> torch.Tensor | None:
        c = self.config
        if c.hidden_dims or c.latent_activation != "sigmoid":
            return None
        return self.encoder[0].weight  # (latent_dim, input_dim)
