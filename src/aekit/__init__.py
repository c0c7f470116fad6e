"""aekit: autoencoders on PyTorch, as scikit-learn estimators, torch modules and a CLI."""

from ._version import __version__
from .estimators import AutoEncoder, VariationalAutoEncoder
from .exceptions import AekitError, AekitWarning, ConfigError, DataError, ModelFileError, NotFittedError
from .serialization import load

__all__ = [
    "AekitError",
    "AekitWarning",
    "AutoEncoder",
    "ConfigError",
    "DataError",
    "ModelFileError",
    "NotFittedError",
    "VariationalAutoEncoder",
    "__version__",
    "load",
]
