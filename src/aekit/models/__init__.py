"""Autoencoder modules, each a plain ``torch.nn.Module``, and their registry."""

from .base import Autoencoder, AutoencoderOutput
from .dense import DenseAutoencoder, DenseConfig

# Model name -> class. Model files store the name, and loading looks it up here.
MODELS: dict[str, type[Autoencoder]] = {
    DenseAutoencoder.name: DenseAutoencoder,
}

__all__ = ["MODELS", "Autoencoder", "AutoencoderOutput", "DenseAutoencoder", "DenseConfig"]
