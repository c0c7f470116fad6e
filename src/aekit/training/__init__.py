"""The training loop, its callbacks and the learning-curve history."""

from .callbacks import Callback, EarlyStopping, EpochLogger, ProgressBar
from .history import History
from .objectives import ReconstructionObjective
from .trainer import Trainer, batch_bounds

__all__ = ["Callback", "EarlyStopping", "EpochLogger", "History", "ProgressBar", "ReconstructionObjective", "Trainer", "batch_bounds"]
