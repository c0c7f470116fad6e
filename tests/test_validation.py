"""Bad inputs at fit and at every later call: each case raises aekit's own error with the
offending value, or trains and returns correct values."""

import logging
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from aekit import AekitWarning, AnomalyDetector, AutoEncoder, ConfigError, DataError, VariationalAutoEncoder
from aekit._device import is_memory_mapped, keep_data_on_host
from aekit.exceptions import NotFittedError, TrainingDivergedError
from aekit.training import Callback
from conftest import small_params
from torch_threads import one_torch_thread  # noqa: F401

ESTIMATORS = [AutoEncoder, VariationalAutoEncoder]


def make_detector(**params):
    return AnomalyDetector(AutoEncoder(**small_params(**params)), random_state=0)


def make(kind, **params):
    """Return a small unfitted estimator of ``kind``: "ae", "vae" or "detector"."""
    if kind == "detector":
        return make_detector(**params)
    cls = AutoEncoder if kind == "ae" else VariationalAutoEncoder
    return cls(**small_params(**params))


class EpochRecorder(Callback):
    """Records the epochs started and a copy of the weights at each epoch's end."""

    def __init__(self, boost_at_epoch=None):
        self.started = []
        self.weights = {}
        self.boost_at_epoch = boost_at_epoch
        self.trainer = None

    def on_epoch_start(self, trainer, epoch):
        self.trainer = trainer
        self.started.append(epoch)
        if epoch == self.boost_at_epoch:
            # A learning rate this large makes the next steps overflow.
            for group in trainer.optimizer.param_groups:
                group["lr"] = 1e12

    def on_epoch_end(self, trainer, epoch, logs):
        self.weights[epoch] = {k: v.clone() for k, v in trainer.model.state_dict().items()}


@pytest.fixture
def frame(table):
    return pd.DataFrame(table, columns=list("abcdef"))


# --- NaN and infinity ----------------------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_nan_in_training_fails_before_first_epoch(cls, frame):
    frame = frame.copy()
    frame.loc[3, "b"] = np.nan
    frame.loc[9, "e"] = np.inf
    recorder = EpochRecorder()
    with pytest.raises(DataError, match=r"column 'b' \(1 value\), 'e' \(1 value\)"):
        cls(**small_params(callbacks=[recorder])).fit(frame)
    assert recorder.started == []


def test_nan_in_training_named_by_detector(table):
    table = table.copy()
    table[5, 2] = -np.inf
    with pytest.raises(DataError, match=r"column 2 \(1 value\); drop or fill those values before training"):
        make_detector().fit(table)


INFERENCE_METHODS = {
    "ae": ["score_samples", "reconstruction_error", "transform", "reconstruct"],
    "vae": ["score_samples", "reconstruction_error", "transform", "reconstruct"],
    "detector": ["score_samples", "reconstruction_error", "decision_function", "predict"],
}
STEPS = {"transform": "encoding", "reconstruct": "reconstructing"}


@pytest.mark.parametrize(
    "kind, method", [(kind, method) for kind, methods in INFERENCE_METHODS.items() for method in methods]
)
def test_nan_at_inference_names_row_and_column(kind, method, frame):
    estimator = make(kind).fit(frame)
    step = STEPS.get(method, "scoring")
    bad = frame.iloc[:6].copy()
    bad.iloc[4, 2] = np.nan
    with pytest.raises(DataError, match=f"at row 4 column 'c'; drop or fill those values before {step}"):
        getattr(estimator, method)(bad)


def test_inf_at_scoring_is_reported_not_scored(table):
    ae = AutoEncoder(**small_params()).fit(table)
    bad = table[:3].copy()
    bad[1, 0] = np.inf
    with pytest.raises(DataError, match="at row 1 column 0"):
        ae.score_samples(bad)


def test_nan_latent_codes_are_rejected(table):
    ae = AutoEncoder(**small_params()).fit(table)
    with pytest.raises(DataError, match="latent codes contain NaN or infinite values"):
        ae.inverse_transform(np.array([[0.0, np.nan]]))


def test_extreme_finite_values_never_score_nan(table):
    ae = AutoEncoder(**small_params()).fit(table)
    far = np.full((2, 6), 3e38, dtype=np.float32)
    try:
        scores = ae.score_samples(far)
    except DataError as error:
        assert "non-finite reconstruction error" in str(error)
    else:
        assert not np.isnan(scores).any()


# --- scales --------------------------------------------------------------------------


def test_raw_pixels_keep_pixel_units():
    rng = np.random.default_rng(0)
    # 8 x 8 grey images of one bright square at a random place, in raw 0-255 values.
    images = np.zeros((120, 1, 8, 8), dtype=np.uint8)
    for image, (row, col) in zip(images, rng.integers(0, 5, size=(120, 2))):
        image[0, row : row + 4, col : col + 4] = 255
    ae = AutoEncoder(**small_params(latent_dim=4, hidden_dims=(32,), max_epochs=40)).fit(images)

    losses = ae.history_.train_loss
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]
    recon = ae.reconstruct(images[:10])
    assert recon.shape == (10, 1, 8, 8)
    assert recon.max() > 100  # pixel units, not [0, 1]
    # Closer to each image than the mean image is: the model learned the squares' places.
    baseline = np.abs(images.mean(axis=0) - images[:10]).mean()
    assert np.abs(recon - images[:10]).mean() < 0.8 * baseline


def test_wildly_different_scales_train_and_keep_units():
    rng = np.random.default_rng(0)
    factor = rng.normal(size=(300, 1))
    X = np.hstack([1e-3 * factor, 1e6 * factor, 1e6 * factor + 5e6, -1e-3 * factor]) + rng.normal(
        scale=[1e-5, 1e4, 1e4, 1e-5], size=(300, 4)
    )
    ae = AutoEncoder(**small_params(latent_dim=1, max_epochs=40)).fit(X)

    losses = ae.history_.train_loss
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0]
    recon = ae.reconstruct(X)
    relative = np.abs(recon - X).mean(axis=0) / X.std(axis=0)
    assert np.all(relative < 0.5), relative
    assert ae.inverse_transform(ae.transform(X[:3])) == pytest.approx(recon[:3], rel=1e-4)


# --- unit-range outputs --------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, params, fragment",
    [
        (AutoEncoder, {"loss": "bce"}, "loss='bce' needs data scaled to [0, 1]"),
        (AutoEncoder, {"loss": "bce", "scaling": "none"}, "scaling resolves to 'none'"),
        (AutoEncoder, {"output_activation": "sigmoid"}, "output_activation='sigmoid' outputs values in (0, 1)"),
        (VariationalAutoEncoder, {"likelihood": "bernoulli"}, "likelihood='bernoulli' needs data scaled to [0, 1]"),
    ],
)
def test_unit_range_output_on_wide_data_is_rejected(cls, params, fragment, table):
    with pytest.raises(ConfigError) as info:
        cls(**small_params(**params)).fit(table * 100)
    assert fragment in str(info.value)


def test_bce_never_gives_negative_loss_or_error(table):
    ae = AutoEncoder(**small_params(loss="bce", scaling="minmax")).fit(table)
    assert min(ae.history_.train_loss) > 0
    # Rows beyond the training range scale outside [0, 1].
    errors = ae.reconstruction_error(np.vstack([table[:5] * 10, table[:5] - 100]))
    assert np.all(errors >= 0)


# --- divergence ----------------------------------------------------------------------


def test_diverging_vae_names_epoch_and_keeps_good_weights(table):
    recorder = EpochRecorder(boost_at_epoch=3)
    vae = VariationalAutoEncoder(**small_params(max_epochs=10, callbacks=[recorder]))
    with pytest.raises(TrainingDivergedError, match=r"at epoch 3, batch \d+ of \d+; lower the learning_rate") as info:
        vae.fit(table)

    error = info.value
    assert error.epoch == 3
    assert error.batch >= 1
    assert error.last_good_epoch == 2
    weights = recorder.trainer.model.state_dict()
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    assert all(torch.equal(weights[k], recorder.weights[2][k]) for k in weights)
    with pytest.raises(NotFittedError):
        vae.transform(table)


def test_divergence_in_first_epoch_keeps_initial_weights(table):
    recorder = EpochRecorder(boost_at_epoch=1)
    with pytest.raises(TrainingDivergedError) as info:
        VariationalAutoEncoder(**small_params(callbacks=[recorder])).fit(table)
    assert info.value.last_good_epoch == 0
    weights = recorder.trainer.model.state_dict()
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())


# --- seeds ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ae", "vae", "detector"])
def test_same_seed_bit_identical_other_seed_differs(kind, table):
    first = make(kind).fit(table).score_samples(table)
    again = make(kind).fit(table).score_samples(table)
    assert np.array_equal(first, again)

    if kind == "detector":
        other = AnomalyDetector(AutoEncoder(**small_params(random_state=1)), random_state=1)
    else:
        other = make(kind, random_state=1)
    assert not np.array_equal(first, other.fit(table).score_samples(table))


def test_same_seed_identical_weights(table):
    a = AutoEncoder(**small_params()).fit(table).model_.state_dict()
    b = AutoEncoder(**small_params()).fit(table).model_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# --- categorical and tiny tables -----------------------------------------------------


def test_categorical_only_table_is_explained_where_unsupported():
    frame = pd.DataFrame({"city": ["Lyon", "Oslo", "Rome"] * 4, "colour": pd.Categorical(["red", "blue"] * 6)})
    with pytest.raises(DataError) as info:
        make("vae").fit(frame)
    message = str(info.value)
    # pandas 2 calls the string column's dtype "object", pandas 3 "str".
    assert "X has only categorical (non-numeric) columns: 'city' (" in message
    assert "'colour' (category)" in message
    assert "aekit.AutoEncoder and aekit.AnomalyDetector take categorical columns" in message
    assert "pandas.get_dummies" in message


@pytest.mark.parametrize("kind", ["ae", "detector"])
def test_categorical_only_table_trains_where_supported(kind):
    frame = pd.DataFrame({"city": ["Lyon", "Oslo", "Rome"] * 4, "colour": pd.Categorical(["red", "blue"] * 6)})
    model = make(kind).fit(frame)
    errors = model.reconstruction_error(frame)
    assert errors.shape == (12,)
    assert np.isfinite(errors).all()


def test_mixed_table_names_the_categorical_column(frame):
    frame = frame.assign(city="Lyon")
    with pytest.raises(DataError, match="non-numeric columns 'city'"):
        VariationalAutoEncoder(**small_params()).fit(frame)


@pytest.mark.parametrize(
    "X, fragment",
    [
        (np.ones((1, 3)), "X has 1 sample; training with batch normalisation needs at least 2"),
        (np.ones((0, 3)), "X has 0 sample(s) (shape=(0, 3)) while a minimum of 1 is required"),
        (np.ones((5, 0)), "X has 0 feature(s) (shape=(5, 0))"),
        (pd.DataFrame(index=range(4)), "X has 0 feature(s) (shape=(4, 0))"),
        (pd.DataFrame({"a": []}), "X has 0 sample(s) (shape=(0, 1))"),
        (np.array(3.0), "X must be 2-D"),
        ([[]], "X has 0 feature(s)"),
    ],
)
@pytest.mark.parametrize("kind", ["ae", "vae", "detector"])
def test_tiny_table_gets_data_error(kind, X, fragment):
    with pytest.raises(DataError) as info:
        make(kind).fit(X)
    assert fragment in str(info.value)


@pytest.mark.parametrize("shape", [(2, 1), (2, 3), (5, 1)])
@pytest.mark.parametrize("kind", ["ae", "vae", "detector"])
def test_tiny_table_trains(kind, shape):
    X = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AekitWarning)
        estimator = make(kind, latent_dim=1).fit(X)
    scores = estimator.score_samples(X)
    assert scores.shape == (shape[0],)
    assert np.all(np.isfinite(scores))


def test_empty_input_at_inference_is_rejected(table):
    ae = AutoEncoder(**small_params()).fit(table)
    with pytest.raises(DataError, match=r"X has 0 sample\(s\)"):
        ae.transform(table[:0])
    assert ae.transform(table[:1]).shape == (1, 2)


# --- small batches and validation splits ---------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fewer_rows_than_batch_size_trains(cls, table):
    estimator = cls(**small_params(batch_size=512, validation_fraction=0.0, max_epochs=5)).fit(table[:20])
    assert estimator.history_.n_epochs == 5
    assert all(np.isfinite(estimator.history_.train_loss))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_empty_validation_split_is_skipped_with_warning(cls, table):
    with pytest.warns(AekitWarning, match="validation skipped: validation_fraction=0.1 of 4 samples"):
        estimator = cls(**small_params(validation_fraction=0.1, batch_size=512)).fit(table[:4])
    assert estimator.metrics_["n_val"] == 0
    assert estimator.metrics_["n_train"] == 4


# --- memory-mapped arrays ------------------------------------------------------------


@pytest.fixture
def memmap(tmp_path, table):
    path = tmp_path / "rows.npy"
    np.save(path, table)
    return np.load(path, mmap_mode="r")


def test_memmap_stays_on_host_for_accelerators(memmap):
    assert is_memory_mapped(memmap)
    assert is_memory_mapped(memmap[10:50])
    assert not is_memory_mapped(np.array(memmap))
    # Memory-mapped data moves batch by batch even when the device has room for it all.
    assert keep_data_on_host(memmap.nbytes, torch.device("cuda"), free_bytes=10**12, memory_mapped=True)
    assert not keep_data_on_host(memmap.nbytes, torch.device("cuda"), free_bytes=10**12)
    assert not keep_data_on_host(memmap.nbytes, torch.device("cpu"), memory_mapped=True)


def test_memmap_trains_like_an_array(memmap, table):
    from_file = AutoEncoder(**small_params(batch_size=16)).fit(memmap)
    in_memory = AutoEncoder(**small_params(batch_size=16)).fit(table)
    assert np.array_equal(from_file.transform(memmap), in_memory.transform(table))
    assert not memmap.flags.writeable


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_memmap_is_not_copied_whole_to_gpu(tmp_path):
    rows = np.random.default_rng(0).normal(size=(20_000, 256)).astype(np.float32)
    np.save(tmp_path / "big.npy", rows)
    memmap = np.load(tmp_path / "big.npy", mmap_mode="r")
    torch.cuda.reset_peak_memory_stats()
    AutoEncoder(latent_dim=8, hidden_dims=(32,), max_epochs=1, batch_size=256, device="cuda").fit(memmap)
    # The training rows alone are 80% of the data; the peak stays far below that.
    assert torch.cuda.max_memory_allocated() < 0.5 * rows.nbytes


# --- architecture sizes --------------------------------------------------------------


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"latent_dim": 0}, "latent_dim must be a positive integer or None, got 0"),
        ({"latent_dim": -3}, "latent_dim must be a positive integer or None, got -3"),
        ({"latent_dim": 2.5}, "latent_dim must be a positive integer or None, got 2.5"),
        ({"hidden_dims": (0,)}, "hidden_dims must hold positive integers, got [0] (invalid: [0])"),
        ({"hidden_dims": (16, -4)}, "hidden_dims must hold positive integers, got [16, -4] (invalid: [-4])"),
        ({"hidden_dims": 16}, "hidden_dims must be a sequence of positive integers or None, got 16"),
    ],
)
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_impossible_sizes_name_the_numbers(cls, params, fragment, table):
    with pytest.raises(ConfigError) as info:
        cls(**small_params(**params)).fit(table)
    assert fragment in str(info.value)


@pytest.mark.parametrize("channels", [(0,), (16, -1), ()])
def test_impossible_channels_are_rejected(channels):
    images = np.random.default_rng(0).random((20, 1, 8, 8))
    with pytest.raises(ConfigError, match="channels must"):
        AutoEncoder(**small_params(architecture="conv", hidden_dims=None, channels=channels)).fit(images)


@pytest.mark.parametrize(
    "params, fragment",
    [
        # Overcomplete codes and odd layer orders train; sparse and denoising models use them.
        ({"latent_dim": 7}, "latent_dim=7 is not smaller than the 6 input features"),
        ({"hidden_dims": (4, 16)}, "hidden_dims (4, 16) widen from 4 to 16 units"),
        ({"hidden_dims": (32, 8, 16)}, "widen from 8 to 16 units"),
    ],
)
def test_unusual_sizes_warn_and_train(params, fragment, table):
    with pytest.warns(AekitWarning, match=re.escape(fragment)):
        ae = AutoEncoder(**small_params(**params)).fit(table)
    assert np.isfinite(ae.reconstruction_error(table)).all()


def test_widening_suggests_sorted_widths(table):
    with pytest.warns(AekitWarning, match=r"e\.g\. \(16, 4\)"):
        AutoEncoder(**small_params(hidden_dims=(4, 16))).fit(table)


def test_divergence_is_logged(table, caplog):
    with caplog.at_level(logging.WARNING, logger="aekit"), pytest.raises(TrainingDivergedError):
        VariationalAutoEncoder(**small_params(callbacks=[EpochRecorder(boost_at_epoch=2)])).fit(table)
    assert "the model keeps the weights of epoch 1" in caplog.text


def test_batch_of_one_with_batch_norm_is_rejected(table):
    with pytest.raises(ConfigError, match="batch_size=1 cannot train with batch normalisation"):
        AutoEncoder(**small_params(batch_size=1)).fit(table[:6])
    ae = AutoEncoder(**small_params(batch_size=1, batch_norm=False, max_epochs=2)).fit(table[:6])
    assert all(np.isfinite(ae.history_.train_loss))


@pytest.mark.parametrize("as_frame", [False, True])
def test_values_beyond_float32_are_named(as_frame, table):
    X = table.astype(np.float64)
    X[3, 1] = 1e300
    if as_frame:
        X = pd.DataFrame(X)
    with pytest.raises(DataError, match=r"1 value\(s\) beyond float32's range .* row 3 column 1 \(1e\+300\)"):
        AutoEncoder(**small_params()).fit(X)


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"random_state": -1}, "random_state must be between 0 and 2**32 - 1, got -1"),
        ({"random_state": 2.5}, "random_state must be an integer, a numpy RandomState or None, got 2.5"),
        ({"random_state": "3"}, "random_state must be an integer, a numpy RandomState or None, got '3'"),
        ({"verbose": None}, "verbose must be an integer >= 0, got None"),
        ({"verbose": "2"}, "verbose must be an integer >= 0, got '2'"),
    ],
)
def test_invalid_seed_and_verbosity_are_config_errors(params, fragment, table):
    with pytest.raises(ConfigError) as info:
        AutoEncoder(**small_params(**params)).fit(table)
    assert fragment in str(info.value)


def test_ragged_rows_are_a_data_error(table):
    ae = AutoEncoder(**small_params()).fit(table)
    with pytest.raises(DataError, match="X cannot be read as an array: .*pass rows of equal length"):
        ae.transform([[1.0, 2.0], [3.0]])
