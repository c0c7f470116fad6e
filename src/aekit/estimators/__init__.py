"""scikit-learn estimators built on aekit's models."""

from ._base import BaseAutoEncoder
from .autoencoder import AutoEncoder
from .variational import VariationalAutoEncoder

# Estimator class name -> class; model files store the name.
ESTIMATORS: dict[str, type[BaseAutoEncoder]] = {
    "AutoEncoder": AutoEncoder,
    "VariationalAutoEncoder": VariationalAutoEncoder,
}

__all__ = ["ESTIMATORS", "AutoEncoder", "BaseAutoEncoder", "VariationalAutoEncoder"]
