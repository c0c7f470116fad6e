"""Training objectives: what a training step minimises for each kind of model."""

from __future__ import annotations

import torch
from torch import nn

from ..losses import reconstruction_loss


class ReconstructionObjective:
    """Plain autoencoder objective: the mean reconstruction loss of the batch."""

    def __init__(self, loss: str = "mse") -> None:
        self.loss = loss

    def __call__(self, model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        output = model(x)
        reconstruction = reconstruction_loss(output.x_recon, x, self.loss)
        return {"loss": reconstruction, "reconstruction_loss": reconstruction}
