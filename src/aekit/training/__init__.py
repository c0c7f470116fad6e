"""The training loop, its callbacks and the learning-curve history."""

from .callbacks import Callback, EarlyStopping, EpochLogger, KLWarmup, ProgressBar, ReconstructionTimeline
from .history import History
from .objectives import ReconstructionObjective, VariationalObjective
from .tensorboard import TensorBoardLogger
from .trainer import Trainer, batch_bounds

__all__ = [
    "Callback",
    "EarlyStopping",
    "EpochLogger",
    "History",
    "KLWarmup",
    "ProgressBar",
    "ReconstructionObjective",
    "ReconstructionTimeline",
    "TensorBoardLogger",
    "Trainer",
    "VariationalObjective",
    "batch_bounds",
]
