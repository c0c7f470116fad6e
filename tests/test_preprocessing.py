import numpy as np
import pytest

from aekit.exceptions import ModelFileError
from aekit.preprocessing import Scaler


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    X = rng.normal(loc=[0, 100, -5], scale=[1, 20, 0.1], size=(50, 3)).astype(np.float32)
    X[:, 2] = 7.0  # a constant column
    return X


def test_standard_centres_and_scales(data):
    scaled = Scaler("standard").fit(data).transform(data)
    np.testing.assert_allclose(scaled[:, :2].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled[:, :2].std(axis=0), 1, atol=1e-4)


@pytest.mark.parametrize("kind", ["standard", "minmax", "global-minmax", "none"])
def test_constant_column_gives_no_nan(data, kind):
    scaled = Scaler(kind).fit(data).transform(data)
    assert np.all(np.isfinite(scaled))
    if kind in ("standard", "minmax"):
        assert np.all(scaled[:, 2] == 0)


def test_minmax_maps_training_range_to_unit_interval(data):
    scaled = Scaler("minmax").fit(data).transform(data)
    np.testing.assert_allclose(scaled[:, :2].min(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(scaled[:, :2].max(axis=0), 1, atol=1e-6)


def test_global_minmax_uses_one_range_for_pixels():
    pixels = np.array([[0, 10, 255], [0, 128, 64]], dtype=np.float32)
    scaler = Scaler("global-minmax").fit(pixels)
    np.testing.assert_array_equal(scaler.offset_, [0, 0, 0])
    np.testing.assert_array_equal(scaler.scale_, [255, 255, 255])


@pytest.mark.parametrize("kind", ["standard", "minmax", "global-minmax", "none"])
def test_inverse_returns_original_units(data, kind):
    scaler = Scaler(kind).fit(data)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(data)), data, rtol=1e-5, atol=1e-4)


def test_dict_round_trip_is_exact(data):
    scaler = Scaler("standard").fit(data)
    restored = Scaler.from_dict(scaler.to_dict(), n_features=3)
    np.testing.assert_array_equal(restored.transform(data), scaler.transform(data))


def test_from_dict_rejects_wrong_length(data):
    state = Scaler("standard").fit(data).to_dict()
    with pytest.raises(ModelFileError, match="has shape"):
        Scaler.from_dict(state, n_features=4)
