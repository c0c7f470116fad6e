"""The training loop, its callbacks and the learning-curve history."""

from .callbacks import Callback, EarlyStopping, EpochLogger, ProgressBar, ReconstructionTimeline
from .history import History
from .objectives import ReconstructionObjective
from .tensorboard import TensorBoardLogger
from .trainer import Trainer, batch_bounds

__all__ = [
    "Callback",
    "EarlyStopping",
    "EpochLogger",
    "History",
    "ProgressBar",
    "ReconstructionObjective",
    "ReconstructionTimeline",
    "TensorBoardLogger",
    "Trainer",
    "batch_bounds",
]
