"""Reconstruction losses, as pure functions of tensors."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Loss = Literal["mse", "bce"]
LOSSES: tuple[str, ...] = ("mse", "bce")


def elementwise_error(x_recon: torch.Tensor, x: torch.Tensor, loss: str = "mse") -> torch.Tensor:
    """Reconstruction error of every element, the same shape as ``x``.

    ``"mse"`` is the squared error; ``"bce"`` is the binary cross-entropy for
    ``x_recon`` in [0, 1]. Targets outside [0, 1], such as rows beyond the training
    range after min-max scaling, are clipped to it, so the loss stays non-negative.
    """
    if loss == "mse":
        return (x_recon - x).square()
    if loss == "bce":
        return F.binary_cross_entropy(x_recon, x.clamp(0, 1), reduction="none")
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")


def reconstruction_error(x_recon: torch.Tensor, x: torch.Tensor, loss: str = "mse") -> torch.Tensor:
    """Per-sample reconstruction error, averaged over every feature (and pixel).

    Returns a tensor of shape (batch,); see :func:`elementwise_error` for the losses.
    """
    return elementwise_error(x_recon, x, loss).flatten(start_dim=1).mean(dim=1)


def reconstruction_loss(x_recon: torch.Tensor, x: torch.Tensor, loss: str = "mse") -> torch.Tensor:
    """Mean reconstruction error over the batch: the scalar that training minimises."""
    return reconstruction_error(x_recon, x, loss).mean()
