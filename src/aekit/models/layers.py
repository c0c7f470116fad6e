"""Building blocks shared by the models: activations and fully connected stacks."""

from __future__ import annotations

from collections.abc import Sequence

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
