"""aekit: autoencoders on PyTorch, as scikit-learn estimators, torch modules and a CLI."""

from ._version import __version__
from .estimators import AnomalyDetector, AutoEncoder, VariationalAutoEncoder
from .exceptions import AekitError, AekitWarning, ConfigError, DataError, ExportError, ModelFileError, NotFittedError
from .serialization import load


def __getattr__(name: str):
    # aekit.plot imports matplotlib, so it loads on first use rather than with aekit.
    if name == "plot":
        import importlib

        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AekitError",
    "AekitWarning",
    "AnomalyDetector",
    "AutoEncoder",
    "ConfigError",
    "DataError",
    "ExportError",
    "ModelFileError",
    "NotFittedError",
    "VariationalAutoEncoder",
    "__version__",
    "load",
]
