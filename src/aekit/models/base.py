"""Base class and output type shared by every aekit autoencoder module."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn


@dataclasses.dataclass
class AutoencoderOutput:
    """What an autoencoder's ``forward`` returns.

    ``mu`` and ``logvar`` are set only by models with a Gaussian encoder.
    """

    x_recon: torch.Tensor
    z: torch.Tensor
    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None


class Autoencoder(nn.Module):
    """An encoder that maps inputs to a latent code and a decoder that maps it back.

    Subclasses set ``name`` (the key in :data:`aekit.models.MODELS`), ``config_class``
    (a frozen dataclass describing the architecture) and implement ``encode`` and
    ``decode``. Everything a subclass needs to be rebuilt is in its config, which is
    what model files store next to the weights.
    """

    name: ClassVar[str]
    config_class: ClassVar[type]
    # True when the module expects inputs flattened to (batch, n_features).
    flat_input: ClassVar[bool] = True

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Map inputs to latent codes of shape (batch, latent_dim)."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Map latent codes back to the input space."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> AutoencoderOutput:
        z = self.encode(x)
        return AutoencoderOutput(x_recon=self.decode(z), z=z)

    def sigmoid_encoder_weight(self) -> torch.Tensor | None:
        """Return the encoder's weight when the encoder is one linear layer followed by a
        sigmoid, where the contractive penalty has a closed form; otherwise ``None``."""
        return None

    @property
    def latent_dim(self) -> int:
        return int(self.config.latent_dim)

    def config_dict(self) -> dict[str, Any]:
        """Return the architecture as plain JSON-ready values."""
        values = dataclasses.asdict(self.config)
        return {key: list(v) if isinstance(v, tuple) else v for key, v in values.items()}

    @classmethod
    def from_config_dict(cls, values: dict[str, Any]) -> Autoencoder:
        """Rebuild an untrained module from :meth:`config_dict` output."""
        fields = {field.name: field for field in dataclasses.fields(cls.config_class)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"unknown {cls.name} config keys {unknown}; expected {sorted(fields)}.")
        converted = {key: tuple(v) if isinstance(v, list) else v for key, v in values.items()}
        return cls(cls.config_class(**converted))
