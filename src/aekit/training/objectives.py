"""Training objectives: what a training step minimises for each kind of model.

An objective maps (model, clean batch) to named loss tensors: ``"loss"`` is minimised,
and the entry named by its ``monitor`` attribute is what validation and early stopping
watch. The other entries (penalties, the KL term) are reported beside them. Input
corruption and latent penalties apply only while the model is in training mode, so
validation measures how well clean inputs are reconstructed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ..corruption import Corruption
from ..losses import (
    jacobian_frobenius_sq,
    kl_divergence,
    kl_sparsity_penalty,
    l1_penalty,
    reconstruction_loss,
    sigmoid_jacobian_frobenius_sq,
)

SPARSITY_KINDS: tuple[str, ...] = ("none", "l1", "kl")


class ReconstructionObjective:
    """Autoencoder objective: the mean reconstruction loss of the batch plus optional pieces.

    Parameters
    ----------
    loss : {"mse", "bce"}
        Reconstruction loss, always measured against the clean batch.
    corruption : Corruption, optional
        Applied to the encoder's input in training mode (a denoising autoencoder).
    sparsity : {"none", "l1", "kl"}
        Latent sparsity penalty: ``"l1"`` is :func:`~aekit.losses.l1_penalty` on the code,
        ``"kl"`` is :func:`~aekit.losses.kl_sparsity_penalty` towards ``sparsity_target``
        and needs codes in (0, 1).
    sparsity_weight, sparsity_target : float
    contractive_weight : float
        Weight of the squared Frobenius norm of the encoder's Jacobian (0 turns it off).
    """

    monitor = "reconstruction_loss"

    def __init__(
        self,
        loss: str = "mse",
        *,
        corruption: Corruption | None = None,
        sparsity: str = "none",
        sparsity_weight: float = 0.0,
        sparsity_target: float = 0.05,
        contractive_weight: float = 0.0,
    ) -> None:
        self.loss = loss
        self.corruption = corruption
        self.sparsity = sparsity
        self.sparsity_weight = sparsity_weight
        self.sparsity_target = sparsity_target
        self.contractive_weight = contractive_weight

    def __call__(self, model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x_in = self.corruption(x) if self.corruption is not None and model.training else x
        output = model(x_in)
        reconstruction = reconstruction_loss(output.x_recon, x, self.loss)
        losses = {"reconstruction_loss": reconstruction}
        total = reconstruction

        if model.training and self.sparsity != "none":
            if self.sparsity == "l1":
                penalty = l1_penalty(output.z)
            else:
                penalty = kl_sparsity_penalty(output.z, self.sparsity_target)
            losses["sparsity_penalty"] = penalty
            total = total + self.sparsity_weight * penalty

        if model.training and self.contractive_weight > 0:
            penalty = contractive_penalty(model, x_in, output.z)
            losses["contractive_penalty"] = penalty
            total = total + self.contractive_weight * penalty

        losses["loss"] = total
        return losses


class TabularObjective:
    """Objective of a :class:`~aekit.models.tabular.TabularAutoencoder`: the mean weighted
    cell error (squared error or cross-entropy) over the batch's present cells.

    ``mask_fraction`` hides that share of the present cells from the encoder in training
    mode (they become missing inputs) while the loss still scores them, so the network
    learns to fill a missing cell from the other columns.
    """

    monitor = "reconstruction_loss"

    def __init__(self, mask_fraction: float = 0.0) -> None:
        self.mask_fraction = mask_fraction

    def __call__(self, model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x_in = x
        if model.training and self.mask_fraction > 0:
            hidden = torch.rand(x.shape, device=x.device) < self.mask_fraction
            x_in = torch.where(hidden, torch.full_like(x, float("nan")), x)
        output = model(x_in)
        errors, present = model.cell_errors(x, output.x_recon)
        loss = errors.sum() / present.sum().clamp(min=1)
        return {"reconstruction_loss": loss, "loss": loss}


def contractive_penalty(model: nn.Module, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the squared Frobenius norm of the encoder's Jacobian at ``x``.

    A single sigmoid encoder layer uses the closed form, from the codes ``z`` already
    computed. Any other encoder gets exact Jacobians by batched autograd, taken in
    evaluation mode: batch normalisation uses its running statistics and dropout is
    off, which makes each sample's code depend on that sample only, as at inference.
    """
    weight = model.sigmoid_encoder_weight()
    if weight is not None:
        return sigmoid_jacobian_frobenius_sq(z, weight).mean()
    # NOTE: batch normalisation's running statistics lag behind the batches during the
    # first steps (about 1 / momentum of them), so the penalty first measures an encoder
    # that differs from the one being trained, and the training loss can rise briefly.
    with evaluation_mode(model):
        return jacobian_frobenius_sq(model.encode, x).mean()


@contextlib.contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[None]:
    """Put ``model`` in evaluation mode for the block, then restore its mode."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class VariationalObjective:
    """VAE objective: -log p(x | z) + kl_weight * KL(q(z | x) || p(z)), averaged over the batch.

    ``z`` is one draw from the posterior per sample, in training and evaluation alike.
    With ``kl_weight`` = ``beta`` = 1 the loss is the negative evidence lower bound
    (ELBO); beta > 1 is the beta-VAE of Higgins et al. (ICLR 2017). A KL warm-up
    (:class:`~aekit.training.callbacks.KLWarmup`) changes ``kl_weight`` during training.
    Validation monitors ``"negative_elbo"`` (beta = 1, no warm-up), the bound on
    -log p(x) in nats per sample by which VAEs are compared.
    """

    monitor = "negative_elbo"

    def __init__(self, beta: float = 1.0, *, corruption: Corruption | None = None) -> None:
        self.beta = beta
        self.kl_weight = beta
        self.corruption = corruption

    def __call__(self, model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x_in = self.corruption(x) if self.corruption is not None and model.training else x
        mu, logvar = model.encode_distribution(x_in)
        z = model.reparameterize(mu, logvar)
        nll = model.negative_log_likelihood(x, z)  # (batch,)
        kl = kl_divergence(mu, logvar)  # (batch,)
        return {
            "loss": (nll + self.kl_weight * kl).mean(),
            "reconstruction_loss": nll.mean(),
            "kl_divergence": kl.mean(),
            "negative_elbo": (nll + kl).mean(),
        }
