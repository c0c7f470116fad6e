"""Optimizer construction tuned for the device."""

from __future__ import annotations

from collections.abc import Iterable

import torch

# Devices where PyTorch 2.x implements fused Adam: one kernel updates every parameter,
# instead of one launch per parameter and state tensor.
FUSED_ADAM_DEVICES = frozenset({"cpu", "cuda", "mps"})


def build_adam(parameters: Iterable[torch.nn.Parameter], learning_rate: float, device: torch.device) -> torch.optim.Adam:
    """Return Adam over ``parameters``, fused where ``device`` supports it.

    Fused Adam computes the same update as the per-parameter loop up to floating-point
    rounding, and is deterministic: the same seed gives the same weights.
    """
    parameters = list(parameters)
    if device.type in FUSED_ADAM_DEVICES:
        try:
            return torch.optim.Adam(parameters, lr=learning_rate, fused=True)
        except (RuntimeError, ValueError):
            # Older PyTorch versions support fused Adam only on CUDA.
            pass
    return torch.optim.Adam(parameters, lr=learning_rate, foreach=True)
