"""Building blocks shared by the models: activations, fully connected stacks, tied
linear layers and convolutional stacks."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..exceptions import ConfigError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}

# The decoder's last layer: sigmoid for data scaled to [0, 1], identity for standardised data.
OUTPUT_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


def check_choice(name: str, value: object, choices: Sequence[str]) -> None:
    """Raise ``ConfigError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)
        raise ConfigError(f"{name} must be one of {listed}; got {value!r}.")


def check_positive_int(name: str, value: object) -> None:
    """Raise ``ConfigError`` unless ``value`` is an integer >= 1 (numpy integers included)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")


def check_integer(name: str, value: object, minimum: int) -> None:
    """Raise ``ConfigError`` unless ``value`` is an integer >= ``minimum`` (numpy integers included)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def is_real_number(value: object) -> bool:
    """Return whether ``value`` is a real number other than a bool or NaN (numpy scalars included)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)


def check_non_negative(name: str, value: object) -> None:
    """Raise ``ConfigError`` unless ``value`` is a finite number >= 0."""
    if not is_real_number(value) or not 0 <= value < math.inf:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}.")


def check_dropout(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ConfigError(f"dropout must be a number in [0, 1), got {value!r}.")


def check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r}.")


def dense_stack(
    dims: Sequence[int], activation: str, dropout: float, batch_norm: bool
) -> nn.Sequential:
    """Fully connected layers ``dims[0] -> dims[1] -> ...``, each followed by
    batch normalisation (optional), the activation and dropout (when > 0).

    Batch normalisation sits before the activation, as in Ioffe & Szegedy (2015).
    """
    layers: list[nn.Module] = []
    for n_in, n_out in zip(dims[:-1], dims[1:]):
        layers.append(nn.Linear(n_in, n_out))
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


# The code layer's activation. "identity" keeps the linear bottleneck; "sigmoid" bounds
# codes to (0, 1), which the KL sparsity penalty and the closed-form contractive penalty need.
LATENT_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
}


def dense_encoder(
    input_dim: int,
    hidden_dims: Sequence[int],
    latent_dim: int,
    activation: str,
    dropout: float,
    batch_norm: bool,
    latent_activation: str,
) -> nn.Sequential:
    """Build the dense encoder: hidden layers from ``input_dim`` down, then the code layer
    of ``latent_dim`` units and its activation (none for ``"identity"``)."""
    dims = [input_dim, *hidden_dims]
    encoder = dense_stack(dims, activation, dropout, batch_norm)
    encoder.append(nn.Linear(dims[-1], latent_dim))
    if latent_activation != "identity":
        encoder.append(LATENT_ACTIVATIONS[latent_activation]())
    return encoder


def dense_decoder(
    latent_dim: int,
    hidden_dims: Sequence[int],
    output_dim: int,
    activation: str,
    dropout: float,
    batch_norm: bool,
    code_batch_norm: bool = True,
) -> nn.Sequential:
    """Build the mirror of a dense encoder: hidden layers in reverse order, then a linear
    map to ``output_dim`` with no output activation.

    ``code_batch_norm=False`` leaves out the batch normalisation of the first layer,
    the one that reads the code (see :func:`drop_code_batch_norm`).
    """
    dims = [latent_dim, *reversed(hidden_dims)]
    decoder = dense_stack(dims, activation, dropout, batch_norm)
    if not code_batch_norm:
        drop_code_batch_norm(decoder)
    decoder.append(nn.Linear(dims[-1], output_dim))
    return decoder


def drop_code_batch_norm(decoder: nn.Sequential) -> None:
    """Replace the batch normalisation after the decoder's first linear layer by an identity.

    Batch normalisation there rescales whatever the code's scale is, so an encoder can
    shrink its codes at no cost to the reconstruction. A penalty on the code (L1 or KL
    sparsity, the contractive norm) is then met by shrinking instead of by sparse or
    contractive codes. The identity keeps the positions, and so the weight names, of
    the other layers.
    """
    if len(decoder) > 1 and isinstance(decoder[1], nn.modules.batchnorm._BatchNorm):
        decoder[1] = nn.Identity()


class TiedLinear(nn.Module):
    """A linear layer whose weight is the transpose of another layer's weight.

    Only the bias is a parameter of this module. The weight belongs to ``source``,
    which also saves it, so a model file stores it once.
    """

    def __init__(self, source: nn.Linear) -> None:
        super().__init__()
        # A plain list keeps ``source`` out of this module's children and state_dict.
        self._source = [source]
        self.in_features = source.out_features
        self.out_features = source.in_features
        self.bias = nn.Parameter(torch.zeros(source.in_features))

    @property
    def weight(self) -> torch.Tensor:
        return self._source[0].weight.t()  # (out_features, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, tied=True"


def tie_decoder_weights(encoder: nn.Sequential, decoder: nn.Sequential) -> None:
    """Replace each ``nn.Linear`` of ``decoder`` by a :class:`TiedLinear` on the encoder's
    linear layers, paired from the code outwards (the decoder's first layer uses the
    encoder's last)."""
    encoder_linears = [module for module in encoder if isinstance(module, nn.Linear)]
    decoder_positions = [i for i, module in enumerate(decoder) if isinstance(module, nn.Linear)]
    if len(encoder_linears) != len(decoder_positions):
        raise ConfigError(
            f"tied weights need as many decoder as encoder linear layers, got "
            f"{len(decoder_positions)} and {len(encoder_linears)}."
        )
    for position, source in zip(decoder_positions, reversed(encoder_linears)):
        decoder[position] = TiedLinear(source)


# --- convolutional stacks -----------------------------------------------------------
# Each convolution halves the height and width (kernel 3, stride 2, padding 1), rounding
# up, so an H x W image becomes ceil(H / 2) x ceil(W / 2). The transposed convolutions
# of the decoder pick their output padding per layer to land on the encoder's sizes
# exactly, so any image size comes back unchanged without cropping.

CONV_KERNEL_SIZE = 3
CONV_STRIDE = 2


def conv_feature_sizes(height: int, width: int, n_layers: int) -> list[tuple[int, int]]:
    """Spatial sizes through ``n_layers`` stride-2 convolutions, the input size first."""
    sizes = [(height, width)]
    for _ in range(n_layers):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


def conv_encoder_body(
    input_shape: Sequence[int], channels: Sequence[int], activation: str, dropout: float, batch_norm: bool
) -> tuple[nn.Sequential, int]:
    """Strided convolutions from ``input_shape`` (channels, height, width), then a flatten.

    Returns the stack and the number of features it outputs.
    """
    in_channels, height, width = input_shape
    layers: list[nn.Module] = []
    for c_in, c_out in zip([in_channels, *channels[:-1]], channels):
        layers.append(nn.Conv2d(c_in, c_out, CONV_KERNEL_SIZE, stride=CONV_STRIDE, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Flatten())
    last_height, last_width = conv_feature_sizes(height, width, len(channels))[-1]
    return nn.Sequential(*layers), channels[-1] * last_height * last_width


def conv_decoder(
    latent_dim: int,
    input_shape: Sequence[int],
    channels: Sequence[int],
    activation: str,
    dropout: float,
    batch_norm: bool,
    code_batch_norm: bool = True,
) -> nn.Sequential:
    """Build the mirror of :func:`conv_encoder_body`, behind a dense layer from the code.

    Maps (batch, latent_dim) to (batch, channels, height, width) of ``input_shape``, with
    no output activation. ``code_batch_norm`` is as in :func:`dense_decoder`.
    """
    out_channels, height, width = input_shape
    sizes = conv_feature_sizes(height, width, len(channels))
    last_height, last_width = sizes[-1]

    first = dense_stack([latent_dim, channels[-1] * last_height * last_width], activation, dropout, batch_norm)
    if not code_batch_norm:
        drop_code_batch_norm(first)
    layers = list(first)
    layers.append(nn.Unflatten(1, (channels[-1], last_height, last_width)))

    widths = [*reversed(channels), out_channels]
    for step, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
        (source_h, source_w), (target_h, target_w) = sizes[-1 - step], sizes[-2 - step]
        # A stride-2 transposed convolution outputs 2 * n - 1 (+ output padding of 0 or 1).
        output_padding = (target_h - (2 * source_h - 1), target_w - (2 * source_w - 1))
        layers.append(
            nn.ConvTranspose2d(
                c_in, c_out, CONV_KERNEL_SIZE, stride=CONV_STRIDE, padding=1, output_padding=output_padding
            )
        )
        if step < len(channels) - 1:
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
