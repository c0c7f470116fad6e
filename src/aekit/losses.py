"""Losses and penalties, as pure functions of tensors.

Per-sample terms return a tensor of shape (batch,); batch penalties return a scalar.
Likelihood terms are in nats.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch.func import jacrev, vmap

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


# --- variational terms --------------------------------------------------------------


def kl_divergence_per_unit(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) for each latent unit, shape (batch, latent_dim).

    The closed form for diagonal Gaussians: 0.5 * (mu^2 + exp(logvar) - 1 - logvar).
    """
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL divergence of the posterior from the standard normal prior, per sample, in nats."""
    return kl_divergence_per_unit(mu, logvar).sum(dim=1)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | z) per sample for independent Bernoulli features, summed over features.

    ``x`` is clipped to [0, 1]; values in between (grey levels) are used as soft targets,
    the usual practice for images scaled to [0, 1].
    """
    elementwise = F.binary_cross_entropy_with_logits(logits, x.clamp(0, 1), reduction="none")
    return elementwise.flatten(start_dim=1).sum(dim=1)


def gaussian_nll(mean: torch.Tensor, logvar: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log N(x | mean, exp(logvar)) per sample, summed over features.

    ``logvar`` broadcasts against ``mean``: a single value shares one variance across
    every feature.
    """
    elementwise = 0.5 * (math.log(2 * math.pi) + logvar + (x - mean).square() / logvar.exp())
    return elementwise.flatten(start_dim=1).sum(dim=1)


# --- latent penalties ---------------------------------------------------------------


def l1_penalty(z: torch.Tensor) -> torch.Tensor:
    """Sum of absolute code activations over the latent units, averaged over the batch."""
    return z.abs().sum(dim=1).mean()


def kl_sparsity_penalty(z: torch.Tensor, target: float, eps: float = 1e-6) -> torch.Tensor:
    """Sum over latent units of KL(target || mean activation), for codes in (0, 1).

    Each unit's mean activation over the batch, rho_hat, is pushed towards ``target``
    (rho) by KL(Bernoulli(rho) || Bernoulli(rho_hat)), as in Andrew Ng's
    lecture notes on sparse autoencoders. ``eps`` keeps the logarithms finite.
    """
    rho_hat = z.mean(dim=0).clamp(eps, 1 - eps)  # (latent_dim,)
    rho = torch.as_tensor(target, dtype=z.dtype, device=z.device)
    divergence = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    return divergence.sum()


def sigmoid_jacobian_frobenius_sq(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius norm of the Jacobian of ``h = sigmoid(x @ weight.T + b)``, per sample.

    The closed form of Rifai et al., "Contractive Auto-Encoders" (ICML 2011):
    sum_j (h_j (1 - h_j))^2 sum_i weight_ji^2. ``h`` has shape (batch, latent_dim) and
    ``weight`` (latent_dim, input_dim).
    """
    return (h * (1 - h)).square() @ weight.square().sum(dim=1)


def jacobian_frobenius_sq(encode: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius norm of the Jacobian d encode(x_i) / d x_i for each sample, exactly.

    Reverse-mode Jacobians are batched over samples with ``torch.func.vmap``, which
    costs about one backward pass per latent unit. ``encode`` must treat samples
    independently (no batch statistics), for example a module in evaluation mode.
    The result stays differentiable with respect to the encoder's parameters.
    """

    def encode_one(sample: torch.Tensor) -> torch.Tensor:
        return encode(sample.unsqueeze(0)).squeeze(0)  # (latent_dim,)

    jacobians = vmap(jacrev(encode_one))(x)  # (batch, latent_dim, *sample_shape)
    return jacobians.square().flatten(start_dim=1).sum(dim=1)
