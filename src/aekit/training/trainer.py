"""Mini-batch training loop for in-memory tensors.

Where the time goes: each epoch makes one shuffled copy of the training tensor and
then takes contiguous slices of it, so batching costs one gather per epoch and no
per-sample Python work. Step losses stay on the device until the epoch ends, so the
loop syncs with the device once per epoch (plus the progress bar's rare refreshes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..exceptions import TrainingDivergedError
from .callbacks import Callback
from .history import History

logger = logging.getLogger(__name__)

# An objective maps (model, clean batch) to named loss tensors, and "loss" is minimised.
# Validation and early stopping monitor the entry named by the objective's ``monitor``
# attribute, or "reconstruction_loss" when it has none.
Objective = Callable[[nn.Module, torch.Tensor], dict[str, torch.Tensor]]


def batch_bounds(n_rows: int, batch_size: int) -> list[tuple[int, int]]:
    """Split ``n_rows`` into (start, stop) slices of ``batch_size`` rows.

    A last batch of a single row joins the one before it, because batch normalisation
    cannot train on one row; ``batch_size`` is clipped to ``n_rows``.
    """
    batch_size = min(batch_size, n_rows)
    bounds = [(start, min(start + batch_size, n_rows)) for start in range(0, n_rows, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2] = (bounds[-2][0], n_rows)
        bounds.pop()
    return bounds


class Trainer:
    """Trains ``model`` by minimising ``objective`` with ``optimizer``.

    Parameters
    ----------
    model : nn.Module
    objective : callable
        ``objective(model, x)`` returns a dict with a scalar ``"loss"`` to minimise and
        the scalar that validation reports: the entry named by ``objective.monitor``,
        or ``"reconstruction_loss"`` when the objective has no such attribute.
    optimizer : torch.optim.Optimizer
    batch_size, max_epochs : int
    generator : torch.Generator
        Source of the per-epoch shuffles, so a seeded run shuffles the same way.
    callbacks : sequence of Callback
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        optimizer: torch.optim.Optimizer,
        *,
        batch_size: int,
        max_epochs: int,
        generator: torch.Generator,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.model = model
        self.objective = objective
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.generator = generator
        self.callbacks = list(callbacks)
        self.history = History()
        self.stop_training = False

    def fit(self, x_train: torch.Tensor, x_val: torch.Tensor | None = None) -> History:
        """Train on ``x_train`` (already on the model's device) and return the history."""
        bounds = batch_bounds(len(x_train), self.batch_size)
        # Callbacks may read the data, e.g. to log reconstructions of a few validation rows.
        self.x_train, self.x_val = x_train, x_val
        self.stop_training = False
        self._call("on_fit_start")

        for epoch in range(1, self.max_epochs + 1):
            started = time.perf_counter()
            self._call("on_epoch_start", epoch)

            train_loss = self.train_one_epoch(x_train, bounds, epoch)
            val_loss = self.evaluate(x_val) if x_val is not None else None
            if val_loss is not None and not _is_finite(val_loss):
                raise TrainingDivergedError(
                    f"the validation loss became {val_loss} at epoch {epoch}; lower the "
                    f"learning_rate (now {self._learning_rate():g}) or check the data's scale."
                )

            logs = {
                "train_loss": train_loss,
                "val_loss": val_loss,
                "learning_rate": self._learning_rate(),
                "seconds": time.perf_counter() - started,
            }
            self._record(logs)
            self._call("on_epoch_end", epoch, logs)
            if self.stop_training:
                break

        self._call("on_fit_end")
        return self.history

    def train_one_epoch(self, x_train: torch.Tensor, bounds: list[tuple[int, int]], epoch: int) -> float:
        """Run one pass over shuffled ``x_train``; return the row-weighted mean loss."""
        self.model.train()
        permutation = torch.randperm(len(x_train), generator=self.generator).to(x_train.device)
        shuffled = x_train[permutation]  # one gather per epoch; batches below are views
        step_losses = torch.empty(len(bounds), device=x_train.device)

        for batch, (start, stop) in enumerate(bounds):
            losses = self.objective(self.model, shuffled[start:stop])
            self.optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            self.optimizer.step()
            step_losses[batch] = losses["loss"].detach()
            self._call("on_batch_end", batch, step_losses[batch])

        sizes = torch.tensor([stop - start for start, stop in bounds], device=x_train.device)
        mean_loss = float((step_losses * sizes).sum() / sizes.sum())  # the epoch's one sync
        if not _is_finite(mean_loss):
            bad_batch = int(torch.nonzero(~torch.isfinite(step_losses))[0, 0]) + 1
            raise TrainingDivergedError(
                f"the training loss became non-finite at epoch {epoch}, batch {bad_batch} of "
                f"{len(bounds)}; lower the learning_rate (now {self._learning_rate():g}) or check "
                "the data's scale."
            )
        return mean_loss

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, batch_size: int = 4096) -> float:
        """Mean monitored loss over ``x`` in evaluation mode (no dropout, running
        batch-norm statistics), so the value does not depend on ``batch_size``."""
        self.model.eval()
        monitor = getattr(self.objective, "monitor", "reconstruction_loss")
        total = torch.zeros((), device=x.device)
        for start in range(0, len(x), batch_size):
            batch = x[start : start + batch_size]
            total += self.objective(self.model, batch)[monitor] * len(batch)
        return float(total / len(x))

    def _learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _record(self, logs: dict[str, float | None]) -> None:
        self.history.train_loss.append(logs["train_loss"])
        self.history.val_loss.append(logs["val_loss"])
        self.history.learning_rate.append(logs["learning_rate"])
        self.history.epoch_seconds.append(logs["seconds"])

    def _call(self, hook: str, *args: object) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)


def _is_finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")
