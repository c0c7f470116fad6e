"""Shared fixtures: small seeded data and the real data sets beside the checkout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# Real data sets live in ../shared/data next to the repository; tests that need them skip without.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data sets not found at {SHARED_DATA}; they sit beside the checkout in ../shared/data")
    return SHARED_DATA


@pytest.fixture
def table() -> np.ndarray:
    """200 rows of 6 correlated features driven by 2 hidden factors, plus noise."""
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(200, 2))
    mixing = rng.normal(size=(2, 6))
    return (factors @ mixing + 0.05 * rng.normal(size=(200, 6))).astype(np.float32)


def small_params(**overrides):
    """Estimator settings that train in well under a second."""
    params = dict(latent_dim=2, hidden_dims=(16,), max_epochs=15, batch_size=32, random_state=0)
    params.update(overrides)
    return params
