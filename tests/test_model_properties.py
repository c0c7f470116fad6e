"""Each model of the family shows, on small seeded data, the property it exists for."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from aekit import AekitWarning, AutoEncoder, ConfigError, DataError, VariationalAutoEncoder
from aekit.losses import jacobian_frobenius_sq
from aekit.models import ConvAutoencoder, ConvConfig, DenseAutoencoder, DenseConfig
from torch_threads import one_torch_thread  # noqa: F401 (an autouse fixture)

# Small networks that train in about a second on the digits below.
SMALL = dict(latent_dim=8, hidden_dims=(32,), max_epochs=30, batch_size=64, random_state=0)


@pytest.fixture(scope="module")
def digits():
    """600 grey 8 x 8 digits (values 0-16): 500 to train on and 100 held out."""
    images = load_digits().images[:600, None].astype(np.float32)
    return images[:500], images[500:]


def mask(images, fraction, seed=0):
    rng = np.random.default_rng(seed)
    return np.where(rng.random(images.shape) < fraction, 0.0, images).astype(np.float32)


def mean_jacobian_norm(estimator, X):
    x = torch.from_numpy(estimator.scaler_.transform(X.reshape(len(X), -1)))
    with torch.no_grad():
        return float(jacobian_frobenius_sq(estimator.model_.eval().encode, x).sqrt().mean())


# --- denoising ------------------------------------------------------------------------


def test_denoising_beats_plain_on_masked_input(digits):
    train, held_out = digits
    plain = AutoEncoder(**SMALL).fit(train)
    denoising = AutoEncoder(**SMALL, noise="masking", noise_fraction=0.3).fit(train)
    noisy = mask(held_out, 0.3)

    def error_against_clean(model):
        return float(np.mean((model.denoise(noisy) - held_out) ** 2))

    with pytest.warns(AekitWarning, match="trained with noise='none', so denoise"):
        plain_error = error_against_clean(plain)
    assert error_against_clean(denoising) < 0.95 * plain_error


def test_noise_never_reaches_inference(digits):
    train, held_out = digits
    model = AutoEncoder(**SMALL, noise="gaussian", noise_std=0.5).fit(train)
    np.testing.assert_array_equal(model.transform(held_out), model.transform(held_out))
    np.testing.assert_array_equal(model.denoise(held_out), model.reconstruct(held_out))
    np.testing.assert_array_equal(model.reconstruction_error(held_out), model.reconstruction_error(held_out))


# --- sparse ---------------------------------------------------------------------------


def test_l1_sparsity_lowers_mean_activation(digits):
    train, held_out = digits
    plain_relu = AutoEncoder(**SMALL, latent_activation="relu").fit(train)
    sparse = AutoEncoder(**SMALL, sparsity="l1", sparsity_weight=1e-2).fit(train)
    assert sparse.model_.config.latent_activation == "relu"

    plain_codes, sparse_codes = plain_relu.transform(held_out), sparse.transform(held_out)
    assert sparse_codes.mean() < 0.5 * plain_codes.mean()
    assert np.mean(sparse_codes < 1e-3) > np.mean(plain_codes < 1e-3)


def test_kl_sparsity_moves_mean_activation_to_target(digits):
    train, held_out = digits
    plain_sigmoid = AutoEncoder(**SMALL, latent_activation="sigmoid").fit(train)
    sparse = AutoEncoder(**SMALL, sparsity="kl", sparsity_weight=0.1, sparsity_target=0.05).fit(train)
    assert sparse.model_.config.latent_activation == "sigmoid"

    sparse_mean = sparse.transform(held_out).mean()
    assert sparse_mean < 0.5 * plain_sigmoid.transform(held_out).mean()
    assert sparse_mean == pytest.approx(0.05, abs=0.05)


def test_kl_sparsity_needs_sigmoid_codes(digits):
    with pytest.raises(ConfigError, match="sparsity='kl' needs codes in \\(0, 1\\), but latent_activation='relu'"):
        AutoEncoder(**SMALL, sparsity="kl", latent_activation="relu").fit(digits[0])


# --- contractive ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "architecture",
    [dict(hidden_dims=(), latent_activation="sigmoid", batch_norm=False), dict(hidden_dims=(16,))],
    ids=["closed-form", "autograd"],
)
def test_contractive_lowers_jacobian_norm(digits, architecture):
    train, held_out = digits
    settings = {**SMALL, **architecture, "max_epochs": 15}
    plain = AutoEncoder(**settings).fit(train)
    contractive = AutoEncoder(**settings, contractive_weight=0.1).fit(train)
    assert mean_jacobian_norm(contractive, held_out) < 0.5 * mean_jacobian_norm(plain, held_out)


# --- convolutional --------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(40, 1, 7, 9), (40, 3, 7, 9), (40, 7, 9)], ids=["grey", "rgb", "grey-3d"])
def test_conv_reconstructs_any_image_size(shape):
    images = np.random.default_rng(0).integers(0, 256, size=shape).astype(np.uint8)
    model = AutoEncoder(latent_dim=4, architecture="conv", channels=(4, 8), max_epochs=2, random_state=0).fit(images)
    assert model.reconstruct(images).shape == shape
    assert model.channels_ == (4, 8)
    assert not hasattr(model, "hidden_dims_")
    assert model.model_.config.input_shape == (shape[1] if len(shape) == 4 else 1, 7, 9)


def test_conv_on_a_table_is_rejected():
    table = np.random.default_rng(0).normal(size=(20, 6))
    with pytest.raises(ConfigError, match=r"architecture='conv' needs images .* each sample has shape \(6,\)"):
        AutoEncoder(architecture="conv").fit(table)


def test_conv_smaller_than_dense_on_mnist():
    conv = ConvAutoencoder(ConvConfig(input_shape=(1, 28, 28), latent_dim=32))
    dense = DenseAutoencoder(DenseConfig(input_dim=784, latent_dim=32, hidden_dims=(512, 256)))
    n_conv = sum(p.numel() for p in conv.parameters())
    n_dense = sum(p.numel() for p in dense.parameters())
    assert n_conv < 0.5 * n_dense


@pytest.mark.parametrize(
    "params, fragment",
    [
        (dict(architecture="conv", tied_weights=True), "tied_weights=True needs architecture='dense'"),
        (dict(architecture="cnn"), "architecture must be one of 'dense', 'conv'; got 'cnn'"),
        (dict(architecture="conv", channels=(8, 0)), "channels must hold positive integers, got [8, 0]"),
        (dict(sparsity="l2"), "sparsity must be one of 'none', 'l1', 'kl'; got 'l2'"),
        (dict(sparsity_weight=-1.0), "sparsity_weight must be a finite number >= 0, got -1.0"),
        (dict(sparsity_target=1.0), "sparsity_target must be a number in (0, 1), got 1.0"),
        (dict(contractive_weight=float("nan")), "contractive_weight must be a finite number >= 0, got nan"),
        (dict(noise="dropout"), "noise must be one of"),
    ],
)
def test_invalid_piece_parameters_name_the_value(digits, params, fragment):
    with pytest.raises(ConfigError) as info:
        AutoEncoder(**{**SMALL, **params}).fit(digits[0])
    assert fragment in str(info.value)


# --- variational ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def vae(digits):
    return VariationalAutoEncoder(latent_dim=8, hidden_dims=(64,), max_epochs=30, batch_size=64, random_state=0).fit(
        digits[0]
    )


def test_vae_kl_term_is_active_under_defaults(vae):
    metrics = vae.metrics_
    assert vae.likelihood_ == "bernoulli"
    assert metrics["val_kl_divergence"] > 1.0
    assert metrics["active_units"] >= 2
    assert len(metrics["kl_per_unit"]) == 8
    assert sum(metrics["kl_per_unit"]) == pytest.approx(metrics["val_kl_divergence"], rel=1e-6)
    assert metrics["val_elbo"] == pytest.approx(
        -metrics["val_reconstruction_nll"] - metrics["val_kl_divergence"], rel=1e-9
    )
    assert metrics["val_elbo"] < 0


def test_vae_inference_is_deterministic(vae, digits):
    held_out = digits[1]
    np.testing.assert_array_equal(vae.score_samples(held_out), vae.score_samples(held_out))
    np.testing.assert_array_equal(vae.transform(held_out), vae.transform(held_out))
    np.testing.assert_array_equal(vae.elbo(held_out), vae.elbo(held_out))
    mu = vae._batched(vae.scaler_.transform(held_out.reshape(100, -1)), lambda x: vae.model_.encode_distribution(x)[0])
    np.testing.assert_array_equal(vae.transform(held_out), mu)


def test_vae_sample_and_interpolate_shapes(vae, digits):
    held_out = digits[1]
    samples = vae.sample(5, random_state=3)
    assert samples.shape == (5, 1, 8, 8)
    np.testing.assert_array_equal(samples, vae.sample(5, random_state=3))
    assert not np.array_equal(samples, vae.sample(5, random_state=4))

    path = vae.interpolate(held_out[0], held_out[1].reshape(-1), steps=7)
    assert path.shape == (7, 1, 8, 8)
    ends = vae.inverse_transform(vae.transform(held_out[:2]))
    np.testing.assert_allclose(path[[0, -1]], ends, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "call, error, fragment",
    [
        (lambda m, X: m.sample(0), ConfigError, "n_samples must be an integer >= 1, got 0"),
        (lambda m, X: m.interpolate(X[0], X[1], steps=1), ConfigError, "steps must be an integer >= 2, got 1"),
        (lambda m, X: m.interpolate(X[:2], X[1]), DataError, "a must be one sample of 64 values"),
        (lambda m, X: m.elbo(X, n_samples=0), ConfigError, "n_samples must be an integer >= 1, got 0"),
    ],
)
def test_vae_method_arguments_are_checked(vae, digits, call, error, fragment):
    with pytest.raises(error) as info:
        call(vae, digits[1])
    assert fragment in str(info.value)


def test_posterior_collapse_warns_with_numbers(digits):
    with pytest.warns(AekitWarning, match=r"posterior collapse: 0 of 4 latent units are active .* KL term is [0-9.e-]+ nats"):
        VariationalAutoEncoder(
            latent_dim=4, hidden_dims=(16,), beta=50.0, max_epochs=20, learning_rate=1e-2, random_state=0
        ).fit(digits[0])


def test_gaussian_likelihood_for_tables(table):
    with warnings.catch_warnings():
        warnings.simplefilter("error", AekitWarning)
        vae = VariationalAutoEncoder(latent_dim=2, hidden_dims=(16,), max_epochs=40, random_state=0).fit(table)
    assert vae.likelihood_ == "gaussian"
    assert vae.metrics_["active_units"] >= 1
    assert vae.sample(4, random_state=0).shape == (4, 6)


def test_bernoulli_needs_unit_range(table):
    with pytest.raises(ConfigError, match="likelihood='bernoulli' needs data scaled to \\[0, 1\\]"):
        VariationalAutoEncoder(likelihood="bernoulli").fit(table)


def test_vae_history_monitors_negative_elbo(vae):
    best = vae.history_.best_epoch or vae.history_.n_epochs
    assert vae.history_.val_loss[best - 1] == min(vae.history_.val_loss)
    # The validation curve is the negative ELBO in nats, far above the per-pixel MSE.
    assert min(vae.history_.val_loss) > 10 * vae.metrics_["val_mse"]
