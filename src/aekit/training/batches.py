"""Batch sources for the trainer: shuffled mini-batches of a tensor, on one rank or many.

A batch source yields ``(x, loss_weight)`` pairs for one epoch. ``x`` is on the
training device. ``loss_weight`` rescales the rank's mean loss so that
DistributedDataParallel's gradient average equals the gradient of the global batch's
mean loss even when ranks hold different numbers of rows (it is 1 on one process).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch

from .._device import should_pin_memory, to_device


class BatchSource(Protocol):
    """A source of training batches: each epoch, device batches and their loss weights."""

    def epoch_batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, float]]: ...


def batch_bounds(n_rows: int, batch_size: int, min_rows: int = 2) -> list[tuple[int, int]]:
    """Split ``n_rows`` into (start, stop) slices of ``batch_size`` rows.

    A last batch smaller than ``min_rows`` joins the one before it, because batch
    normalisation cannot train on one row (on several ranks, ``min_rows`` is twice
    the number of ranks, so every rank gets at least 2 rows). ``batch_size`` is
    clipped to ``n_rows``.
    """
    batch_size = min(batch_size, n_rows)
    bounds = [(start, min(start + batch_size, n_rows)) for start in range(0, n_rows, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_rows:
        bounds[-2] = (bounds[-2][0], n_rows)
        bounds.pop()
    return bounds


class TensorBatches:
    """Shuffled mini-batches of an in-memory tensor, sliced whole (no per-sample work).

    Each epoch draws one permutation from ``generator``. On several ranks every rank
    draws the same permutation and keeps its own contiguous share of each global batch
    of ``batch_size`` rows, as ``DistributedSampler`` does, so a global batch contains the
    same rows as on one process.

    When ``x`` is on the training device, the epoch's rows are gathered once and the
    batches are views. When ``x`` stays on the host (data too large for the GPU), each
    batch is gathered on the host, into pinned memory on CUDA, and copied
    asynchronously, so the copy of one batch overlaps the previous step.
    """

    def __init__(
        self,
        x: torch.Tensor,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device,
        *,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.x = x
        self.generator = generator
        self.device = device
        self.rank = rank
        self.world_size = world_size
        self.bounds = batch_bounds(len(x), batch_size, min_rows=2 * world_size)

    def __len__(self) -> int:
        return len(self.bounds)

    def epoch_batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, float]]:
        permutation = torch.randperm(len(self.x), generator=self.generator)
        own_rows, own_bounds, weights = self._own_batches(permutation)

        if self.x.device == self.device:
            shuffled = self.x[own_rows.to(self.x.device)]  # one gather per epoch; batches are views
            for (start, stop), weight in zip(own_bounds, weights):
                yield shuffled[start:stop], weight
            return

        pin = should_pin_memory(self.device)
        for (start, stop), weight in zip(own_bounds, weights):
            rows = own_rows[start:stop]
            staging = torch.empty((len(rows), *self.x.shape[1:]), dtype=self.x.dtype, pin_memory=pin)
            torch.index_select(self.x, 0, rows, out=staging)
            yield to_device(staging, self.device), weight

    def _own_batches(self, permutation: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, int]], list[float]]:
        """Return this rank's rows of the epoch, their batch bounds and loss weights."""
        if self.world_size == 1:
            return permutation, self.bounds, [1.0] * len(self.bounds)

        pieces, own_bounds, weights = [], [], []
        offset = 0
        for start, stop in self.bounds:
            n_rows = stop - start
            low = start + self.rank * n_rows // self.world_size
            high = start + (self.rank + 1) * n_rows // self.world_size
            pieces.append(permutation[low:high])
            own_bounds.append((offset, offset + high - low))
            weights.append((high - low) * self.world_size / n_rows)
            offset += high - low
        return torch.cat(pieces), own_bounds, weights
