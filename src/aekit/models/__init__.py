"""Autoencoder modules, each a plain ``torch.nn.Module``, and their registry."""

from .base import Autoencoder, AutoencoderOutput
from .conv import ConvAutoencoder, ConvConfig
from .dense import DenseAutoencoder, DenseConfig
from .variational import VariationalAutoencoder, VariationalConfig

# Model name -> class. Model files store the name, and loading looks it up here.
MODELS: dict[str, type[Autoencoder]] = {
    DenseAutoencoder.name: DenseAutoencoder,
    ConvAutoencoder.name: ConvAutoencoder,
    VariationalAutoencoder.name: VariationalAutoencoder,
}

__all__ = [
    "MODELS",
    "Autoencoder",
    "AutoencoderOutput",
    "ConvAutoencoder",
    "ConvConfig",
    "DenseAutoencoder",
    "DenseConfig",
    "VariationalAutoencoder",
    "VariationalConfig",
]
