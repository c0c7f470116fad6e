"""Input corruption for denoising autoencoders.

A denoising autoencoder (Vincent et al., "Extracting and Composing Robust Features with
Denoising Autoencoders", ICML 2008) reconstructs the clean input from a corrupted copy.
The training objectives apply a :class:`Corruption` to each batch only while the model
is in training mode. Encoding, reconstruction and scoring always see the input as
given. Values are in the scaled units the model trains in.
"""

from __future__ import annotations

import dataclasses

import torch

from .exceptions import ConfigError
from .models.layers import check_non_negative, is_real_number

NOISE_KINDS: tuple[str, ...] = ("none", "gaussian", "masking", "salt-and-pepper")


@dataclasses.dataclass
class Corruption:
    """Random corruption of a batch.

    Parameters
    ----------
    kind : {"gaussian", "masking", "salt-and-pepper"}
        ``"gaussian"`` adds N(0, noise_std^2) noise to every value. ``"masking"`` sets
        each value to 0 with probability ``noise_fraction``. ``"salt-and-pepper"``
        sets each value, with probability ``noise_fraction``, to its feature's minimum
        or maximum (equally likely).
    noise_std : float
        Standard deviation of the Gaussian noise.
    noise_fraction : float
        Share of values masked or set to an extreme, in [0, 1].
    low, high : Tensor, optional
        Per-feature minimum and maximum for salt-and-pepper noise, shaped like one
        sample; :meth:`fit` sets them from training data. Without them, 0 and 1.
    """

    kind: str
    noise_std: float = 0.1
    noise_fraction: float = 0.25
    low: torch.Tensor | None = None
    high: torch.Tensor | None = None

    def __post_init__(self) -> None:
        validate_noise(self.kind, self.noise_std, self.noise_fraction)
        if self.kind == "none":
            raise ConfigError("Corruption needs a noise kind other than 'none'; build no Corruption instead.")

    def fit(self, x: torch.Tensor) -> Corruption:
        """Store each feature's minimum and maximum over the rows of ``x``."""
        self.low = x.amin(dim=0)
        self.high = x.amax(dim=0)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Return a corrupted copy of ``x``; draws come from torch's global RNG."""
        if self.kind == "gaussian":
            return x + self.noise_std * torch.randn_like(x)

        hit = torch.rand_like(x) < self.noise_fraction
        if self.kind == "masking":
            return x.masked_fill(hit, 0.0)

        low = self.low if self.low is not None else torch.zeros((), device=x.device, dtype=x.dtype)
        high = self.high if self.high is not None else torch.ones((), device=x.device, dtype=x.dtype)
        salt = torch.rand_like(x) < 0.5
        extremes = torch.where(salt, high.expand_as(x), low.expand_as(x))
        return torch.where(hit, extremes, x)


def validate_noise(kind: object, noise_std: object, noise_fraction: object) -> None:
    """Raise ``ConfigError`` unless the noise settings are valid."""
    if kind not in NOISE_KINDS:
        listed = ", ".join(repr(k) for k in NOISE_KINDS)
        raise ConfigError(f"noise must be one of {listed}; got {kind!r}.")
    check_non_negative("noise_std", noise_std)
    if not is_real_number(noise_fraction) or not 0 <= noise_fraction <= 1:
        raise ConfigError(f"noise_fraction must be a number in [0, 1], got {noise_fraction!r}.")


def build_corruption(kind: str, noise_std: float, noise_fraction: float) -> Corruption | None:
    """Validate the noise settings and return a :class:`Corruption`, or ``None`` for ``"none"``."""
    validate_noise(kind, noise_std, noise_fraction)
    if kind == "none":
        return None
    return Corruption(kind, float(noise_std), float(noise_fraction))
