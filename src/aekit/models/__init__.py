"""Autoencoder modules, each a plain ``torch.nn.Module``, and their registry."""

from .base import Autoencoder, AutoencoderOutput
from .conv import ConvAutoencoder, ConvConfig
from .dense import DenseAutoencoder, DenseConfig
from .tabular import TabularAutoencoder, TabularConfig
from .variational import VariationalAutoencoder, VariationalConfig

# Model name -> class. Model files store the name, and loading looks it up here.
MODELS: dict[str, type[Autoencoder]] = {
    DenseAutoencoder.name: DenseAutoencoder,
    ConvAutoencoder.name: ConvAutoencoder,
    VariationalAutoencoder.name: VariationalAutoencoder,
    TabularAutoencoder.name: TabularAutoencoder,
}

__all__ = [
    "MODELS",
    "Autoencoder",
    "AutoencoderOutput",
    "ConvAutoencoder",
    "ConvConfig",
    "DenseAutoencoder",
    "DenseConfig",
    "TabularAutoencoder",
    "TabularConfig",
    "VariationalAutoencoder",
    "VariationalConfig",
]
