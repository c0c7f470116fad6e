"""scikit-learn estimators built on aekit's models."""

from ._base import BaseAutoEncoder
from .anomaly import AnomalyDetector
from .autoencoder import AutoEncoder
from .variational import VariationalAutoEncoder

# Estimator class name -> class; model files store the name.
ESTIMATORS: dict[str, type] = {
    "AutoEncoder": AutoEncoder,
    "VariationalAutoEncoder": VariationalAutoEncoder,
    "AnomalyDetector": AnomalyDetector,
}

__all__ = ["ESTIMATORS", "AnomalyDetector", "AutoEncoder", "BaseAutoEncoder", "VariationalAutoEncoder"]
