"""Convolutional autoencoder for images of shape (channels, height, width).

The encoder halves the image's height and width with each strided convolution, then a
dense layer maps the feature maps to a latent code of ``latent_dim`` units. The decoder
mirrors it with transposed convolutions whose output padding restores every size
exactly, so odd sizes such as 7 x 9 come back unchanged.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..exceptions import ConfigError
from .base import Autoencoder
from .layers import (
    ACTIVATIONS,
    LATENT_ACTIVATIONS,
    OUTPUT_ACTIVATIONS,
    check_bool,
    check_choice,
    check_dropout,
    check_positive_int,
    conv_decoder,
    conv_encoder_body,
)


@dataclasses.dataclass(frozen=True)
class ConvConfig:
    """Architecture of a :class:`ConvAutoencoder`.

    ``input_shape`` is one image's (channels, height, width). ``channels`` lists the
    output channels of the encoder's convolutions from the input side; each one halves
    the height and width, rounding up. The decoder uses them in reverse order.
    ``code_batch_norm`` is as in :class:`~aekit.models.DenseConfig`.
    """

    input_shape: tuple[int, int, int]
    latent_dim: int
    channels: tuple[int, ...] = (32, 64)
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = True
    output_activation: str = "sigmoid"
    latent_activation: str = "identity"
    code_batch_norm: bool = True

    def __post_init__(self) -> None:
        check_image_shape(self.input_shape)
        check_positive_int("latent_dim", self.latent_dim)
        check_channels(self.channels)
        check_choice("activation", self.activation, sorted(ACTIVATIONS))
        check_choice("output_activation", self.output_activation, sorted(OUTPUT_ACTIVATIONS))
        check_choice("latent_activation", self.latent_activation, sorted(LATENT_ACTIVATIONS))
        check_dropout(self.dropout)
        check_bool("batch_norm", self.batch_norm)
        check_bool("code_batch_norm", self.code_batch_norm)

        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        object.__setattr__(self, "latent_dim", int(self.latent_dim))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "dropout", float(self.dropout))


def check_image_shape(input_shape: object) -> None:
    """Raise ``ConfigError`` unless ``input_shape`` is (channels, height, width) of positive integers."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ConfigError(
            f"input_shape must be (channels, height, width), got {input_shape!r}; convolutional "
            "models take images of shape (n_samples, channels, height, width)."
        )
    for name, value in zip(("channels", "height", "width"), input_shape):
        check_positive_int(f"input_shape {name}", value)


def check_channels(channels: object) -> None:
    """Raise ``ConfigError`` unless ``channels`` is a non-empty sequence of positive integers."""
    if not isinstance(channels, (tuple, list)) or not channels:
        raise ConfigError(f"channels must be a non-empty sequence of positive integers, got {channels!r}.")
    for position, width in enumerate(channels):
        check_positive_int(f"channels[{position}]", width)


class ConvAutoencoder(Autoencoder):
    """Convolutional autoencoder on images of shape (batch, channels, height, width).

    Inputs of shape (batch, channels * height * width) are accepted too and come back
    in the shape they were given.

    Examples
    --------
    >>> import torch
    >>> from aekit.models import ConvAutoencoder, ConvConfig
    >>> model = ConvAutoencoder(ConvConfig(input_shape=(3, 7, 9), latent_dim=4, channels=(8, 16)))
    >>> out = model(torch.rand(2, 3, 7, 9))
    >>> tuple(out.x_recon.shape), tuple(out.z.shape)
    ((2, 3, 7, 9), (2, 4))
    """

    name = "conv"
    config_class = ConvConfig
    flat_input = False

    def __init__(self, config: ConvConfig) -> None:
        super().__init__(config)
        c = config

        body, n_features = conv_encoder_body(c.input_shape, c.channels, c.activation, c.dropout, c.batch_norm)
        self.encoder = body
        self.encoder.append(nn.Linear(n_features, c.latent_dim))
        if c.latent_activation != "identity":
            self.encoder.append(LATENT_ACTIVATIONS[c.latent_activation]())

        self.decoder = conv_decoder(
            c.latent_dim, c.input_shape, c.channels, c.activation, c.dropout, c.batch_norm, c.code_batch_norm
        )
        self.decoder.append(OUTPUT_ACTIVATIONS[c.output_activation]())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        images = x.reshape(x.shape[0], *self.config.input_shape)  # (batch, channels, height, width)
        return self.encoder(images)  # (batch, latent_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (batch, channels, height, width)

    def forward(self, x: torch.Tensor):
        output = super().forward(x)
        output.x_recon = output.x_recon.reshape(x.shape)
        return output
