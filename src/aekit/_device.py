"""Resolution of the ``device`` parameter."""

from __future__ import annotations

import torch

from .exceptions import ConfigError


def resolve_device(device: str | torch.device) -> torch.device:
    """Return the torch device for ``device``: ``"auto"`` picks CUDA, then MPS, then CPU."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise ConfigError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}."
        )

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")

    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}."
        ) from err

    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={device!r} was requested but CUDA is not available on this machine; "
            "use device='auto' or 'cpu'."
        )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"device={device!r} was requested but Apple MPS is not available on this machine; "
            "use device='auto' or 'cpu'."
        )
    return resolved
