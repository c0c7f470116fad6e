"""Seeding helpers that keep training reproducible without touching global state."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from sklearn.utils import check_random_state

from .exceptions import ConfigError

# Seeds are drawn below 2**31 so they fit every RNG that torch and numpy accept.
_MAX_SEED = 2**31 - 1


def resolve_seed(random_state: int | np.random.RandomState | None) -> int:
    """Turn a scikit-learn style ``random_state`` into one integer seed.

    ``None`` draws a fresh seed from numpy's global RNG, so unseeded runs differ.
    """
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if not 0 <= random_state <= 2**32 - 1:
            raise ConfigError(
                f"random_state must be between 0 and 2**32 - 1, got {random_state!r}."
            )
        return int(random_state)
    try:
        rng = check_random_state(random_state)
    except ValueError as err:
        raise ConfigError(
            f"random_state must be an integer, a numpy RandomState or None, got {random_state!r}."
        ) from err
    return int(rng.randint(0, _MAX_SEED))


def derive_seed(seed: int, *keys: int) -> int:
    """Return a seed for one part of a seeded run, such as one network of an ensemble.

    The result depends only on ``seed`` and ``keys``, and different keys give
    unrelated streams.
    """
    return int(np.random.default_rng([seed, *keys]).integers(_MAX_SEED))


@contextlib.contextmanager
def torch_seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU RNG for the block and restore the caller's RNG state afterwards.

    Weight initialisation and dropout draw from this RNG, so the same seed gives the
    same weights and the same dropout masks on CPU.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
