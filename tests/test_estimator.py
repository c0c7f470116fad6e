import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from aekit import AekitWarning, AutoEncoder, ConfigError, DataError, NotFittedError, VariationalAutoEncoder
from conftest import small_params


def test_fit_sets_fitted_attributes(table):
    ae = AutoEncoder(**small_params()).fit(table)
    assert ae.n_features_in_ == 6
    assert ae.latent_dim_ == 2
    assert ae.hidden_dims_ == (16,)
    assert ae.input_shape_ == (6,)
    assert ae.history_.n_epochs >= 1
    assert set(ae.metrics_) >= {"train_mse", "val_mse", "pca_val_mse", "pca_train_mse"}
    assert not hasattr(ae, "feature_names_in_")
    assert ae.metrics_["n_train"] == 160
    assert ae.metrics_["n_val"] == 40


def test_output_shapes_and_units(table):
    ae = AutoEncoder(**small_params(max_epochs=60)).fit(table)
    codes = ae.transform(table)
    assert codes.shape == (200, 2)
    assert codes.dtype == np.float32
    decoded = ae.inverse_transform(codes)
    assert decoded.shape == (200, 6)
    np.testing.assert_allclose(decoded, ae.reconstruct(table), rtol=1e-5, atol=1e-5)
    errors = ae.reconstruction_error(table)
    assert errors.shape == (200,)
    assert np.all(errors >= 0)
    np.testing.assert_array_equal(ae.score_samples(table), -errors)
    assert ae.score(table) == pytest.approx(-errors.mean(), rel=1e-6)


def test_reconstructions_come_back_in_original_units():
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(300, 1))
    X = np.hstack([1000 + 50 * factors, -3 + 0.01 * factors, 7 + 0 * factors]).astype(np.float32)
    ae = AutoEncoder(latent_dim=1, hidden_dims=(16,), max_epochs=150, random_state=0).fit(X)
    recon = ae.reconstruct(X)
    # Each column is reconstructed near its own scale, the constant one included.
    assert np.abs(recon[:, 0] - X[:, 0]).mean() < 10
    assert np.abs(recon[:, 1] - X[:, 1]).mean() < 0.002
    np.testing.assert_allclose(recon[:, 2], 7, atol=0.25)


def test_fit_transform_matches_fit_then_transform(table):
    codes = AutoEncoder(**small_params()).fit_transform(table)
    np.testing.assert_array_equal(codes, AutoEncoder(**small_params()).fit(table).transform(table))


def test_same_seed_is_bit_identical(table):
    a = AutoEncoder(**small_params(dropout=0.2)).fit(table)
    b = AutoEncoder(**small_params(dropout=0.2)).fit(table)
    assert a.history_.train_loss == b.history_.train_loss
    for (name, pa), pb in zip(a.model_.state_dict().items(), b.model_.state_dict().values()):
        assert torch.equal(pa, pb), name
    np.testing.assert_array_equal(a.transform(table), b.transform(table))


def test_different_seed_differs(table):
    a = AutoEncoder(**small_params(random_state=0)).fit(table)
    b = AutoEncoder(**small_params(random_state=1)).fit(table)
    assert not np.array_equal(a.transform(table), b.transform(table))


def test_fit_leaves_global_torch_rng_alone(table):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    AutoEncoder(**small_params()).fit(table)
    assert torch.equal(torch.rand(3), expected)


def test_scores_do_not_depend_on_batch(table):
    ae = AutoEncoder(**small_params(dropout=0.3)).fit(table)
    full = ae.reconstruction_error(table)
    one_by_one = np.concatenate([ae.reconstruction_error(table[i : i + 1]) for i in range(20)])
    np.testing.assert_allclose(one_by_one, full[:20], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(ae.reconstruction_error(table), full)


def test_outlier_scores_higher(table):
    ae = AutoEncoder(**small_params(max_epochs=80)).fit(table)
    outlier = table[:1].copy()
    outlier[0, 0] += 10 * table[:, 0].std()
    assert ae.reconstruction_error(outlier)[0] > np.percentile(ae.reconstruction_error(table), 99)


def test_dataframe_names_and_column_order(table):
    frame = pd.DataFrame(table, columns=list("abcdef"))
    ae = AutoEncoder(**small_params()).fit(frame)
    assert list(ae.feature_names_in_) == list("abcdef")
    shuffled = frame[list("fedcba")]
    np.testing.assert_array_equal(ae.transform(shuffled), ae.transform(frame))


def test_dataframe_missing_column_is_named(table):
    frame = pd.DataFrame(table, columns=list("abcdef"))
    ae = AutoEncoder(**small_params()).fit(frame)
    with pytest.raises(DataError, match=r"missing \['f'\], unexpected \['g'\]"):
        ae.transform(frame.rename(columns={"f": "g"}))


def test_image_array_keeps_sample_shape():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 1, 4, 4)).astype(np.uint8)
    ae = AutoEncoder(latent_dim=3, hidden_dims=(8,), max_epochs=3, random_state=0).fit(images)
    assert ae.input_shape_ == (1, 4, 4)
    assert ae.scaler_.kind == "global-minmax"
    assert ae.model_.config.output_activation == "sigmoid"
    recon = ae.reconstruct(images)
    assert recon.shape == (40, 1, 4, 4)
    assert recon.min() >= 0
    assert recon.max() <= 255
    assert ae.inverse_transform(ae.transform(images)).shape == (40, 1, 4, 4)


def test_table_defaults_to_standard_scaling(table):
    ae = AutoEncoder(**small_params()).fit(table)
    assert ae.scaler_.kind == "standard"
    assert ae.model_.config.output_activation == "identity"


def test_default_sizes_from_data(table):
    ae = AutoEncoder(max_epochs=1, random_state=0).fit(np.tile(table, (1, 8)))  # 48 features
    assert ae.latent_dim_ == 7  # round(sqrt(48))
    assert ae.hidden_dims_ == (128, 64)  # 2 * 48 rounded up to a power of two, then half


def test_clone_and_params_round_trip():
    ae = AutoEncoder(5, hidden_dims=(32, 16), dropout=0.1, random_state=3)
    copy = clone(ae)
    assert copy.get_params() == ae.get_params()
    copy.set_params(latent_dim=7)
    assert copy.latent_dim == 7
    assert ae.latent_dim == 5


def test_pipeline_and_grid_search(table):
    labels = (table[:, 0] > np.median(table[:, 0])).astype(int)
    pipeline = Pipeline([("ae", AutoEncoder(**small_params())), ("clf", LogisticRegression())])
    pipeline.fit(table, labels)
    assert pipeline.score(table, labels) > 0.6

    search = GridSearchCV(AutoEncoder(**small_params()), {"latent_dim": [1, 3]}, cv=2)
    search.fit(table)
    assert search.best_params_["latent_dim"] in (1, 3)
    assert np.isfinite(search.best_score_)


def test_params_unchanged_after_failed_fit(table):
    ae = AutoEncoder(**small_params(activation="swish"))
    before = ae.get_params()
    with pytest.raises(ConfigError, match="activation must be one of"):
        ae.fit(table)
    assert ae.get_params() == before
    assert not hasattr(ae, "model_")


def test_not_fitted_error():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        AutoEncoder().transform(np.zeros((2, 3)))


def test_wrong_feature_count_is_explained(table):
    ae = AutoEncoder(**small_params()).fit(table)
    with pytest.raises(DataError, match="X has 5 features, but AutoEncoder is expecting 6 features"):
        ae.transform(table[:, :5])


def test_nan_in_training_data_names_columns(table):
    frame = pd.DataFrame(table, columns=list("abcdef"))
    frame.loc[3, "b"] = np.nan
    frame.loc[4, "e"] = np.inf
    frame.loc[5, "e"] = -np.inf
    with pytest.raises(DataError, match=r"column 'b' \(1 value\), 'e' \(2 values\)"):
        AutoEncoder(**small_params()).fit(frame)


def test_nan_at_scoring_names_row_and_column(table):
    ae = AutoEncoder(**small_params()).fit(table)
    bad = table[:10].copy()
    bad[7, 4] = np.nan
    with pytest.raises(DataError, match="at row 7 column 4; drop or fill those values before scoring"):
        ae.reconstruction_error(bad)


def test_non_numeric_column_is_named(table):
    # AutoEncoder takes text columns as categorical; the variational model takes numbers only.
    frame = pd.DataFrame(table, columns=list("abcdef"))
    frame["city"] = "Lyon"
    with pytest.raises(DataError, match="non-numeric columns 'city'"):
        VariationalAutoEncoder(max_epochs=1).fit(frame)
    assert AutoEncoder(**small_params()).fit(frame).schema_.columns[-1].kind == "categorical"


def test_one_dimensional_input_is_rejected():
    with pytest.raises(DataError, match=r"must be 2-D .*reshape\(-1, 1\)"):
        AutoEncoder(**small_params()).fit(np.arange(10.0))


def test_wide_latent_warns_but_trains(table):
    with pytest.warns(AekitWarning, match="latent_dim=6 is not smaller than the 6 input features"):
        ae = AutoEncoder(**small_params(latent_dim=6)).fit(table)
    assert ae.transform(table).shape == (200, 6)


def test_narrow_hidden_layer_warns(table):
    with pytest.warns(AekitWarning, match=r"narrowest layer \(2 units\)"):
        AutoEncoder(**small_params(latent_dim=4, hidden_dims=(16, 2))).fit(table)


@pytest.mark.parametrize("n_rows, fraction", [(2, 0.2), (3, 0.5)])
def test_tiny_data_skips_validation_with_warning(n_rows, fraction):
    X = np.random.default_rng(0).normal(size=(n_rows, 4))
    with pytest.warns(AekitWarning, match=f"validation skipped: validation_fraction={fraction} of {n_rows} samples"):
        ae = AutoEncoder(**small_params(batch_size=256, validation_fraction=fraction)).fit(X)
    assert ae.metrics_["n_train"] == n_rows
    assert ae.metrics_["n_val"] == 0
    assert ae.metrics_["val_mse"] is None
    assert ae.history_.val_loss == [None] * ae.history_.n_epochs


def test_single_row_needs_batch_norm_off():
    X = np.ones((1, 4))
    with pytest.raises(DataError, match="X has 1 sample; .*set batch_norm=False"):
        AutoEncoder(**small_params(validation_fraction=0.0)).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AekitWarning)
        ae = AutoEncoder(**small_params(validation_fraction=0.0, batch_norm=False, latent_dim=1)).fit(X)
    assert ae.transform(X).shape == (1, 1)


def test_bce_on_standardised_data_is_rejected(table):
    with pytest.raises(ConfigError, match="loss='bce' needs data scaled to \\[0, 1\\]"):
        AutoEncoder(**small_params(loss="bce")).fit(table)


def test_bce_with_minmax_trains_with_positive_loss(table):
    ae = AutoEncoder(**small_params(loss="bce", scaling="minmax")).fit(table)
    assert min(ae.history_.train_loss) > 0
    assert ae.history_.train_loss[-1] < ae.history_.train_loss[0]


@pytest.mark.parametrize(
    "param, value, fragment",
    [
        ("max_epochs", 0, "max_epochs must be an integer >= 1, got 0"),
        ("batch_size", 2.5, "batch_size must be an integer >= 1, got 2.5"),
        ("learning_rate", -1.0, "learning_rate must be a positive number, got -1.0"),
        ("validation_fraction", 1.0, "validation_fraction must be in [0, 1), got 1.0"),
        ("latent_dim", 0, "latent_dim must be a positive integer or None, got 0"),
        ("hidden_dims", (8, 0), "hidden_dims must hold positive integers, got [8, 0]"),
        ("scaling", "robust", "scaling must be one of"),
        ("device", "tpu", "device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'tpu'"),
    ],
)
def test_invalid_parameters_name_the_value(table, param, value, fragment):
    with pytest.raises(ConfigError) as info:
        AutoEncoder(**small_params(**{param: value})).fit(table)
    assert fragment in str(info.value)


def test_validation_loss_tracks_early_stopping(table):
    ae = AutoEncoder(**small_params(max_epochs=400, patience=5, learning_rate=1e-2)).fit(table)
    history = ae.history_
    assert history.stopped_early
    assert history.best_epoch is not None
    assert history.val_loss[history.best_epoch - 1] == min(history.val_loss)
    assert ae.metrics_["val_mse"] == pytest.approx(min(history.val_loss), rel=1e-5)
