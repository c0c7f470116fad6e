"""The training loop, its callbacks and the learning-curve history."""

from .callbacks import Callback, EarlyStopping, EpochLogger, KLWarmup, ProgressBar
from .history import History
from .objectives import ReconstructionObjective, VariationalObjective
from .trainer import Trainer, batch_bounds

__all__ = [
    "Callback",
    "EarlyStopping",
    "EpochLogger",
    "History",
    "KLWarmup",
    "ProgressBar",
    "ReconstructionObjective",
    "Trainer",
    "VariationalObjective",
    "batch_bounds",
]
