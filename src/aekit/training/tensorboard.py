"""TensorBoard logging as a training callback (needs the optional ``tensorboard`` package)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..exceptions import ConfigError
from .callbacks import Callback

if TYPE_CHECKING:
    from .trainer import Trainer


class TensorBoardLogger(Callback):
    """Write losses, the learning rate and reconstruction grids for TensorBoard.

    Scalars are written every epoch: ``loss/train``, ``loss/validation``,
    ``learning_rate`` and each extra series of the history (``extra/<name>``). When
    ``image_shape`` is given, a grid of ``n_images`` validation inputs is written once
    and their reconstructions at epochs 1, 2, 4, 8, ... and at the end.

    Parameters
    ----------
    log_dir : str or Path
        Folder for the event files; point ``tensorboard --logdir`` at it.
    image_shape : (channels, height, width), optional
        Shape of one sample when the data are images.
    n_images : int, default=16
    """

    def __init__(self, log_dir: str | Path, image_shape: Sequence[int] | None = None, n_images: int = 16) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ConfigError(
                "TensorBoard logging needs the tensorboard package; install it with "
                "pip install 'aekit[tensorboard]' or pip install tensorboard."
            ) from err
        self._writer_class = SummaryWriter
        self.log_dir = Path(log_dir)
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        self.n_images = n_images
        self.writer = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.writer = self._writer_class(log_dir=str(self.log_dir))
        if self._images_wanted(trainer):
            self.writer.add_images("inputs", self._as_grid(self._sample(trainer)), 0)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float | None]) -> None:
        self.writer.add_scalar("loss/train", logs["train_loss"], epoch)
        if logs["val_loss"] is not None:
            self.writer.add_scalar("loss/validation", logs["val_loss"], epoch)
        self.writer.add_scalar("learning_rate", logs["learning_rate"], epoch)
        for name, values in trainer.history.extra.items():
            if len(values) == epoch:
                self.writer.add_scalar(f"extra/{name}", values[-1], epoch)
        if epoch & (epoch - 1) == 0 and self._images_wanted(trainer):
            self._write_reconstructions(trainer, epoch)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self._images_wanted(trainer):
            self._write_reconstructions(trainer, trainer.history.n_epochs)
        self.writer.close()

    def _images_wanted(self, trainer: Trainer) -> bool:
        sample = self._sample(trainer)
        return self.image_shape is not None and sample is not None and math.prod(self.image_shape) == sample[0].numel()

    def _sample(self, trainer: Trainer) -> torch.Tensor | None:
        """Return the first validation rows, or training rows; None for streamed data without validation."""
        source = trainer.x_val if trainer.x_val is not None else trainer.x_train
        if not isinstance(source, torch.Tensor):
            return None
        return source[: self.n_images].to(trainer.device)

    @torch.no_grad()
    def _write_reconstructions(self, trainer: Trainer, epoch: int) -> None:
        was_training = trainer.model.training
        trainer.model.eval()
        recon = trainer.model(self._sample(trainer)).x_recon
        trainer.model.train(was_training)
        self.writer.add_images("reconstructions", self._as_grid(recon), epoch)

    def _as_grid(self, batch: torch.Tensor) -> torch.Tensor:
        """Shape a batch as (N, C, H, W) images in [0, 1] for TensorBoard."""
        images = batch.detach().float().cpu().reshape(len(batch), *self.image_shape)
        if images.dim() == 3:
            images = images.unsqueeze(1)
        low, high = images.min(), images.max()
        return (images - low) / (high - low) if high > low else torch.zeros_like(images)
