"""Callbacks that the trainer calls at fixed points of a run.

Early stopping, the progress bar and per-epoch logging are callbacks, and users can
add their own by subclassing :class:`Callback` and passing it to the trainer.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from .trainer import Trainer

logger = logging.getLogger(__name__)


class Callback:
    """Base class: every hook does nothing until overridden.

    ``logs`` passed to :meth:`on_epoch_end` holds ``train_loss``, ``val_loss``
    (``None`` without validation rows), ``learning_rate`` and ``seconds``. A callback
    ends training early by setting ``trainer.stop_training = True``.
    """

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        pass

    def on_batch_end(self, trainer: Trainer, batch: int, loss: torch.Tensor) -> None:
        """Called after each optimizer step; ``loss`` is still on the device, so reading
        it with ``.item()`` forces a host sync and belongs only in rare refreshes."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float | None]) -> None:
        pass

    def on_fit_end(self, trainer: Trainer) -> None:
        pass

    def state_dict(self) -> dict[str, Any] | None:
        """State that a checkpoint must keep to continue the run exactly: JSON values
        and tensors. None (the default) for a callback without such state."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state returned by :meth:`state_dict`."""


class EarlyStopping(Callback):
    """Stop when the monitored loss has not improved for ``patience`` epochs, then
    restore the weights of the best epoch.

    An epoch improves on the best when its loss is lower by more than ``min_delta``
    times the best (a relative threshold, so it works whatever the loss's scale).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 1e-4) -> None:
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.best_loss = float("inf")
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self._epochs_without_improvement = 0

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float | None]) -> None:
        loss = logs[self.monitor]
        if loss is None:
            return
        if loss < self.best_loss * (1 - self.min_delta) or self.best_state is None:
            self.best_loss = loss
            self.best_epoch = epoch
            self.best_state = copy.deepcopy(trainer.model.state_dict())
            self._epochs_without_improvement = 0
            return
        self._epochs_without_improvement += 1
        if self._epochs_without_improvement >= self.patience:
            trainer.stop_training = True

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "epochs_without_improvement": self._epochs_without_improvement,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_loss = float(state["best_loss"])
        self.best_epoch = state["best_epoch"]
        self.best_state = state["best_state"]
        self._epochs_without_improvement = int(state["epochs_without_improvement"])

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)
            trainer.history.best_epoch = self.best_epoch
        trainer.history.stopped_early = trainer.stop_training


class ProgressBar(Callback):
    """A tqdm bar over epochs showing the latest losses; hidden when output is not a terminal."""

    # Seconds between reads of the running batch loss, each a host-device sync.
    refresh_seconds = 0.5

    def __init__(self) -> None:
        self._bar: tqdm | None = None
        self._last_refresh = 0.0

    def on_fit_start(self, trainer: Trainer) -> None:
        # A resumed run starts the bar at the epochs already done.
        self._bar = tqdm(
            total=trainer.max_epochs, initial=trainer.start_epoch - 1, unit="epoch", desc="training",
            disable=None, leave=True,
        )

    def on_batch_end(self, trainer: Trainer, batch: int, loss: torch.Tensor) -> None:
        now = time.monotonic()
        if self._bar is None or self._bar.disable or now - self._last_refresh < self.refresh_seconds:
            return
        self._last_refresh = now
        self._bar.set_postfix_str(f"batch {batch + 1} loss {loss.item():.4g}", refresh=True)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float | None]) -> None:
        if self._bar is None:
            return
        postfix = f"train {logs['train_loss']:.4g}"
        if logs["val_loss"] is not None:
            postfix += f" val {logs['val_loss']:.4g}"
        self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.update(1)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class EpochLogger(Callback):
    """Log one INFO line per epoch: epoch, losses and seconds."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float | None]) -> None:
        val = "n/a" if logs["val_loss"] is None else f"{logs['val_loss']:.6g}"
        logger.info(
            "epoch %d/%d: train_loss %.6g, val_loss %s, %.2f s",
            epoch, trainer.max_epochs, logs["train_loss"], val, logs["seconds"],
        )


class ReconstructionTimeline(Callback):
    """Record the reconstructions of a few fixed inputs at chosen epochs.

    Epochs 1, 2, 4, 8, ... (powers of two) are recorded, and at the end of training
    the final weights (the best epoch's, after early stopping restored them). Each
    record is one forward pass over ``x`` in evaluation mode, which draws no random
    numbers, so recording leaves a seeded run's results unchanged.

    Attributes
    ----------
    epochs : list of int
        The epoch of each record.
    reconstructions : list of ndarray
        Model outputs for ``x``, on the CPU, one array per record.
    """

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x
        self.epochs: list[int] = []
        self.reconstructions: list[torch.Tensor] = []

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float | None]) -> None:
        if epoch & (epoch - 1) == 0:  # a power of two
            self._record(trainer, epoch)

    def on_fit_end(self, trainer: Trainer) -> None:
        final_epoch = trainer.history.best_epoch or trainer.history.n_epochs
        if final_epoch not in self.epochs:
            self._record(trainer, final_epoch)
        order = sorted(range(len(self.epochs)), key=self.epochs.__getitem__)
        self.epochs = [self.epochs[i] for i in order]
        self.reconstructions = [self.reconstructions[i] for i in order]

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": list(self.epochs), "reconstructions": list(self.reconstructions)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs = [int(epoch) for epoch in state["epochs"]]
        self.reconstructions = list(state["reconstructions"])

    @torch.no_grad()
    def _record(self, trainer: Trainer, epoch: int) -> None:
        was_training = trainer.model.training
        trainer.model.eval()
        # Large training sets stay on the host, so the inputs may need moving to the model.
        self.reconstructions.append(trainer.model(self.x.to(trainer.device)).x_recon.float().cpu())
        self.epochs.append(epoch)
        trainer.model.train(was_training)


class KLWarmup(Callback):
    """Raise a VAE objective's KL weight linearly from ``beta / epochs`` in the first
    epoch to ``beta`` in epoch ``epochs``, then keep it there.

    Starting with a small KL weight lets the decoder learn to use the code before the
    KL term pulls the posterior towards the prior, a common remedy for posterior
    collapse. The objective must have ``beta`` and ``kl_weight`` attributes.
    """

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        objective = trainer.objective
        objective.kl_weight = objective.beta * min(1.0, epoch / self.epochs)

    def on_fit_end(self, trainer: Trainer) -> None:
        trainer.objective.kl_weight = trainer.objective.beta
