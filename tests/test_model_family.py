"""The shared model tests: every model of the family, as a module and as an estimator,
passes the same checks of shapes, training, save/load and determinism."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits

import aekit
from aekit.models import (
    MODELS,
    ConvAutoencoder,
    ConvConfig,
    DenseAutoencoder,
    DenseConfig,
    TabularAutoencoder,
    VariationalAutoencoder,
    VariationalConfig,
)
from aekit.training import ReconstructionObjective, VariationalObjective
from torch_threads import one_torch_thread  # noqa: F401 (an autouse fixture)

# name -> (factory of an untrained module, objective, shape of one input sample)
MODULES = {
    "dense": (lambda: DenseAutoencoder(DenseConfig(input_dim=12, latent_dim=3, hidden_dims=(16,))), ReconstructionObjective(), (12,)),
    "dense-tied": (
        lambda: DenseAutoencoder(DenseConfig(input_dim=12, latent_dim=3, hidden_dims=(16,), tied_weights=True)),
        ReconstructionObjective(),
        (12,),
    ),
    "dense-sigmoid-code": (
        lambda: DenseAutoencoder(DenseConfig(input_dim=12, latent_dim=3, hidden_dims=(), latent_activation="sigmoid")),
        ReconstructionObjective(contractive_weight=0.1),
        (12,),
    ),
    "conv-grey-odd": (
        lambda: ConvAutoencoder(ConvConfig(input_shape=(1, 7, 9), latent_dim=4, channels=(4, 8))),
        ReconstructionObjective(),
        (1, 7, 9),
    ),
    "conv-rgb": (
        lambda: ConvAutoencoder(ConvConfig(input_shape=(3, 6, 5), latent_dim=4, channels=(4,))),
        ReconstructionObjective(sparsity="l1", sparsity_weight=1e-3),
        (3, 6, 5),
    ),
    "vae-dense-bernoulli": (
        lambda: VariationalAutoencoder(VariationalConfig(input_shape=(12,), latent_dim=3, hidden_dims=(16,))),
        VariationalObjective(),
        (12,),
    ),
    "vae-dense-gaussian": (
        lambda: VariationalAutoencoder(
            VariationalConfig(input_shape=(12,), latent_dim=3, hidden_dims=(16,), likelihood="gaussian")
        ),
        VariationalObjective(beta=2.0),
        (12,),
    ),
    "vae-conv": (
        lambda: VariationalAutoencoder(
            VariationalConfig(input_shape=(1, 7, 9), latent_dim=3, backbone="conv", channels=(4, 8))
        ),
        VariationalObjective(),
        (1, 7, 9),
    ),
}


def unit_batch(shape, n=32, seed=0):
    """Return values in [0, 1] with structure to learn: 3 random patterns, randomly mixed."""
    generator = torch.Generator().manual_seed(seed)
    patterns = torch.rand(3, *shape, generator=generator)
    weights = torch.rand(n, 3, generator=generator).softmax(dim=1)
    return torch.einsum("nk,k...->n...", weights, patterns)


@pytest.mark.parametrize("name", MODULES)
def test_module_output_shapes(name):
    factory, _, shape = MODULES[name]
    model = factory()
    out = model.eval()(unit_batch(shape, n=5))
    assert out.x_recon.shape == (5, *shape)
    assert out.z.shape == (5, model.latent_dim)
    if isinstance(model, VariationalAutoencoder):
        assert out.mu.shape == out.logvar.shape == (5, model.latent_dim)
        assert torch.equal(out.z, out.mu)


@pytest.mark.parametrize("name", MODULES)
def test_module_loss_is_finite_and_falls(name):
    factory, objective, shape = MODULES[name]
    torch.manual_seed(0)
    model = factory()
    x = unit_batch(shape, n=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = objective(model.train(), x)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


@pytest.mark.parametrize("name", MODULES)
def test_module_config_round_trip(name):
    factory, _, shape = MODULES[name]
    model = factory()
    rebuilt = type(model).from_config_dict(model.config_dict())
    assert rebuilt.config == model.config
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = unit_batch(shape, n=4)
    assert torch.equal(rebuilt.eval()(x).x_recon, model.eval()(x).x_recon)


def test_registry_holds_every_model():
    assert MODELS == {
        "dense": DenseAutoencoder,
        "conv": ConvAutoencoder,
        "vae": VariationalAutoencoder,
        "tabular": TabularAutoencoder,
    }


# --- estimators -----------------------------------------------------------------------

ESTIMATOR_CASES = {
    "dense": (aekit.AutoEncoder, {}),
    "dense-tied": (aekit.AutoEncoder, {"tied_weights": True}),
    "conv": (aekit.AutoEncoder, {"architecture": "conv", "channels": (4, 8)}),
    "denoising-gaussian": (aekit.AutoEncoder, {"noise": "gaussian", "noise_std": 0.2}),
    "denoising-salt-and-pepper": (aekit.AutoEncoder, {"noise": "salt-and-pepper"}),
    "sparse-l1": (aekit.AutoEncoder, {"sparsity": "l1"}),
    "sparse-kl": (aekit.AutoEncoder, {"sparsity": "kl"}),
    "contractive": (aekit.AutoEncoder, {"contractive_weight": 0.1, "dropout": 0.1}),
    "conv-denoising-sparse": (
        aekit.AutoEncoder,
        {"architecture": "conv", "channels": (4,), "noise": "masking", "sparsity": "l1"},
    ),
    "vae": (aekit.VariationalAutoEncoder, {}),
    "vae-conv-gaussian": (
        aekit.VariationalAutoEncoder,
        {"architecture": "conv", "channels": (4, 8), "likelihood": "gaussian"},
    ),
    "beta-vae-warmup": (aekit.VariationalAutoEncoder, {"beta": 4.0, "kl_warmup_epochs": 3, "noise": "masking"}),
}


@pytest.fixture(scope="module")
def digits():
    return load_digits().images[:240, None].astype(np.float32)  # (240, 1, 8, 8), values 0-16


def make_estimator(name, **overrides):
    estimator_class, params = ESTIMATOR_CASES[name]
    settings = dict(latent_dim=4, hidden_dims=(16,), max_epochs=4, batch_size=64, random_state=0)
    settings.update(params)
    settings.update(overrides)
    return estimator_class(**settings)


@pytest.fixture(scope="module")
def fitted(digits):
    with warnings.catch_warnings():
        # Four epochs on 240 images are too few for every VAE latent unit to become active.
        warnings.filterwarnings("ignore", "posterior collapse", aekit.AekitWarning)
        return {name: make_estimator(name).fit(digits) for name in ESTIMATOR_CASES}


@pytest.mark.parametrize("name", ESTIMATOR_CASES)
def test_estimator_output_shapes(fitted, digits, name):
    estimator = fitted[name]
    assert estimator.transform(digits[:7]).shape == (7, 4)
    assert estimator.reconstruct(digits[:7]).shape == (7, 1, 8, 8)
    assert estimator.inverse_transform(np.zeros((2, 4), dtype=np.float32)).shape == (2, 1, 8, 8)
    errors = estimator.reconstruction_error(digits[:7])
    assert errors.shape == (7,)
    assert np.all(np.isfinite(errors))


@pytest.mark.parametrize("name", ESTIMATOR_CASES)
def test_estimator_loss_is_finite_and_falls(fitted, name):
    # The validation loss is the monitored one: the reconstruction of clean inputs, or a
    # VAE's negative ELBO. Training losses hold penalties that may rise at first.
    history = fitted[name].history_
    assert np.all(np.isfinite(history.train_loss))
    assert np.all(np.isfinite(history.val_loss))
    assert history.val_loss[-1] < history.val_loss[0]


@pytest.mark.parametrize("name", ESTIMATOR_CASES)
def test_estimator_save_load_round_trip(fitted, digits, name, tmp_path):
    estimator = fitted[name]
    estimator.save(tmp_path / name)
    loaded = aekit.load(tmp_path / name)
    assert type(loaded) is type(estimator)
    assert loaded.get_params() == estimator.get_params()
    assert loaded.metrics_ == estimator.metrics_
    np.testing.assert_array_equal(loaded.transform(digits), estimator.transform(digits))
    np.testing.assert_array_equal(loaded.reconstruct(digits), estimator.reconstruct(digits))
    np.testing.assert_array_equal(loaded.reconstruction_error(digits), estimator.reconstruction_error(digits))
    for attribute in ("hidden_dims_", "channels_", "likelihood_"):
        assert getattr(loaded, attribute, None) == getattr(estimator, attribute, None)
    if isinstance(estimator, aekit.VariationalAutoEncoder):
        np.testing.assert_array_equal(loaded.sample(3, random_state=1), estimator.sample(3, random_state=1))
        np.testing.assert_array_equal(loaded.elbo(digits), estimator.elbo(digits))


@pytest.mark.parametrize("name", ESTIMATOR_CASES)
def test_estimator_same_seed_is_bit_identical(fitted, digits, name):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "posterior collapse", aekit.AekitWarning)
        again = clone(fitted[name]).fit(digits)
    assert again.history_.train_loss == fitted[name].history_.train_loss
    for (key, first), second in zip(fitted[name].model_.state_dict().items(), again.model_.state_dict().values()):
        assert torch.equal(first, second), key
    np.testing.assert_array_equal(again.transform(digits), fitted[name].transform(digits))
