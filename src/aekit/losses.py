"""Reconstruction losses, as pure functions of tensors."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Loss = Literal["mse", "bce"]
LOSSES: tuple[str, ...] = ("mse", "bce")


def reconstruction_error(x_recon: torch.Tensor, x: torch.Tensor, loss: str = "mse") -> torch.Tensor:
    """Per-sample reconstruction error, averaged over every feature (and pixel).

    Returns a tensor of shape (batch,). ``"mse"`` is the mean squared error;
    ``"bce"`` is the mean binary cross-entropy for ``x_recon`` in [0, 1]. Targets
    outside [0, 1], such as rows beyond the training range after min-max scaling,
    are clipped to it, so the loss stays non-negative.
    """
    if loss == "mse":
        elementwise = (x_recon - x).square()
    elif loss == "bce":
        elementwise = F.binary_cross_entropy(x_recon, x.clamp(0, 1), reduction="none")
    else:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")
    return elementwise.flatten(start_dim=1).mean(dim=1)


def reconstruction_loss(x_recon: torch.Tensor, x: torch.Tensor, loss: str = "mse") -> torch.Tensor:
    """Mean reconstruction error over the batch: the scalar that training minimises.

    Every sample has the same number of features, so the mean of the per-sample means
    is the mean over all elements, which one fused loss kernel computes (forward and
    backward) in place of the four kernels of :func:`reconstruction_error`.
    """
    if loss == "mse":
        return F.mse_loss(x_recon, x)
    if loss == "bce":
        # CUDA autocast rejects binary_cross_entropy as unsafe in fp16, so it runs in fp32.
        with torch.autocast(device_type=x.device.type, enabled=False):
            return F.binary_cross_entropy(x_recon.float(), x.float().clamp(0, 1))
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")
