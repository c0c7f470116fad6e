"""Unit tests of the composable pieces: losses, penalties, corruption, objectives and the
KL warm-up."""

import math

import pytest
import torch
from torch import distributions

from aekit.corruption import Corruption, build_corruption
from aekit.exceptions import ConfigError
from aekit.losses import (
    bernoulli_nll,
    gaussian_nll,
    jacobian_frobenius_sq,
    kl_divergence,
    kl_sparsity_penalty,
    l1_penalty,
    sigmoid_jacobian_frobenius_sq,
)
from aekit.models import DenseAutoencoder, DenseConfig, VariationalAutoencoder, VariationalConfig
from aekit.models.layers import TiedLinear
from aekit.training import KLWarmup, ReconstructionObjective, Trainer, VariationalObjective
from torch_threads import one_torch_thread  # noqa: F401 (an autouse fixture)


def seeded(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# --- losses ---------------------------------------------------------------------------


def test_kl_divergence_matches_torch_distributions():
    mu, logvar = seeded(5, 3), seeded(5, 3, seed=1)
    posterior = distributions.Normal(mu, (0.5 * logvar).exp())
    prior = distributions.Normal(torch.zeros(3), torch.ones(3))
    expected = distributions.kl_divergence(posterior, prior).sum(dim=1)
    torch.testing.assert_close(kl_divergence(mu, logvar), expected)


def test_kl_divergence_is_zero_at_prior():
    assert torch.equal(kl_divergence(torch.zeros(4, 2), torch.zeros(4, 2)), torch.zeros(4))


def test_bernoulli_nll_matches_torch_distributions():
    logits, x = seeded(4, 2, 3), torch.rand(4, 2, 3, generator=torch.Generator().manual_seed(1)).round()
    expected = -distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(dim=1)
    torch.testing.assert_close(bernoulli_nll(logits, x), expected)


def test_gaussian_nll_matches_torch_distributions():
    mean, x, logvar = seeded(4, 6), seeded(4, 6, seed=1), torch.tensor([-1.5])
    expected = -distributions.Normal(mean, (0.5 * logvar).exp()).log_prob(x).sum(dim=1)
    torch.testing.assert_close(gaussian_nll(mean, logvar, x), expected)


def test_l1_penalty_sums_units_and_averages_batch():
    z = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    assert l1_penalty(z).item() == pytest.approx(3.0)


def test_kl_sparsity_penalty_values():
    at_target = torch.full((10, 4), 0.05)
    assert kl_sparsity_penalty(at_target, 0.05).item() == pytest.approx(0.0, abs=1e-6)
    half = torch.full((10, 2), 0.5)
    per_unit = 0.05 * math.log(0.05 / 0.5) + 0.95 * math.log(0.95 / 0.5)
    assert kl_sparsity_penalty(half, 0.05).item() == pytest.approx(2 * per_unit, rel=1e-5)


def test_sigmoid_closed_form_matches_autograd():
    model = DenseAutoencoder(DenseConfig(input_dim=10, latent_dim=4, hidden_dims=(), latent_activation="sigmoid"))
    x = seeded(6, 10)
    weight = model.sigmoid_encoder_weight()
    assert weight is not None
    closed_form = sigmoid_jacobian_frobenius_sq(model.encode(x), weight)
    torch.testing.assert_close(closed_form, jacobian_frobenius_sq(model.encode, x))


def test_autograd_jacobian_of_linear_map_is_its_weight():
    layer = torch.nn.Linear(5, 3)
    norms = jacobian_frobenius_sq(layer, seeded(4, 5))
    torch.testing.assert_close(norms, layer.weight.square().sum().expand(4))


def test_sigmoid_weight_only_for_single_sigmoid_layer():
    deep = DenseAutoencoder(DenseConfig(input_dim=10, latent_dim=4, hidden_dims=(8,), latent_activation="sigmoid"))
    linear = DenseAutoencoder(DenseConfig(input_dim=10, latent_dim=4, hidden_dims=()))
    assert deep.sigmoid_encoder_weight() is None
    assert linear.sigmoid_encoder_weight() is None


# --- tied weights ---------------------------------------------------------------------


def test_tied_decoder_uses_transposed_encoder_weights():
    tied = DenseAutoencoder(DenseConfig(input_dim=12, latent_dim=3, hidden_dims=(8,), tied_weights=True))
    untied = DenseAutoencoder(DenseConfig(input_dim=12, latent_dim=3, hidden_dims=(8,)))
    decoder_layers = [m for m in tied.decoder if isinstance(m, TiedLinear)]
    encoder_layers = [m for m in tied.encoder if isinstance(m, torch.nn.Linear)]
    assert len(decoder_layers) == 2
    for decoder_layer, encoder_layer in zip(decoder_layers, reversed(encoder_layers)):
        assert torch.equal(decoder_layer.weight, encoder_layer.weight.t())
    n_tied = sum(p.numel() for p in tied.parameters())
    n_untied = sum(p.numel() for p in untied.parameters())
    assert n_untied - n_tied == 12 * 8 + 8 * 3
    state = tied.state_dict()
    assert "decoder.0.weight" not in state  # the first TiedLinear keeps only its bias
    assert "decoder.0.bias" in state


def test_tied_weights_receive_decoder_gradients():
    model = DenseAutoencoder(DenseConfig(input_dim=6, latent_dim=2, hidden_dims=(), tied_weights=True))
    x = seeded(4, 6)
    (model.decode(torch.ones(4, 2)) - x).square().sum().backward()
    assert model.encoder[0].weight.grad is not None
    assert model.encoder[0].weight.grad.abs().sum() > 0


# --- corruption -----------------------------------------------------------------------


def test_gaussian_noise_has_requested_std():
    torch.manual_seed(0)
    x = torch.zeros(200, 50)
    noisy = Corruption("gaussian", noise_std=0.3)(x)
    assert noisy.std().item() == pytest.approx(0.3, rel=0.05)


def test_masking_zeroes_requested_fraction():
    torch.manual_seed(0)
    x = torch.ones(200, 50)
    masked = Corruption("masking", noise_fraction=0.3)(x)
    assert set(masked.unique().tolist()) == {0.0, 1.0}
    assert (masked == 0).float().mean().item() == pytest.approx(0.3, abs=0.02)


def test_salt_and_pepper_uses_feature_extremes():
    torch.manual_seed(0)
    train = torch.tensor([[0.0, -2.0], [1.0, 5.0], [0.5, 1.0]])
    corruption = Corruption("salt-and-pepper", noise_fraction=0.5).fit(train)
    x = torch.full((400, 2), 0.25)
    noisy = corruption(x)
    changed = noisy != x
    assert changed.float().mean().item() == pytest.approx(0.5, abs=0.05)
    assert set(noisy[:, 0][changed[:, 0]].unique().tolist()) == {0.0, 1.0}
    assert set(noisy[:, 1][changed[:, 1]].unique().tolist()) == {-2.0, 5.0}


@pytest.mark.parametrize(
    "kind, std, fraction, fragment",
    [
        ("blur", 0.1, 0.2, "noise must be one of 'none', 'gaussian', 'masking', 'salt-and-pepper'; got 'blur'"),
        ("gaussian", -0.1, 0.2, "noise_std must be a finite number >= 0, got -0.1"),
        ("masking", 0.1, 1.5, "noise_fraction must be a number in [0, 1], got 1.5"),
    ],
)
def test_invalid_noise_names_value(kind, std, fraction, fragment):
    with pytest.raises(ConfigError) as info:
        build_corruption(kind, std, fraction)
    assert fragment in str(info.value)


def test_no_noise_builds_nothing():
    assert build_corruption("none", 0.1, 0.25) is None


# --- objectives -----------------------------------------------------------------------


def test_corruption_and_penalties_apply_only_in_training():
    torch.manual_seed(0)
    model = DenseAutoencoder(DenseConfig(input_dim=8, latent_dim=2, hidden_dims=(), latent_activation="sigmoid"))
    x = torch.rand(16, 8)
    objective = ReconstructionObjective(
        corruption=Corruption("masking", noise_fraction=0.5), sparsity="kl", sparsity_weight=1.0, contractive_weight=1.0
    )
    plain = ReconstructionObjective()

    model.eval()
    evaluated = objective(model, x)
    assert set(evaluated) == {"loss", "reconstruction_loss"}
    assert torch.equal(evaluated["loss"], plain(model, x)["loss"])
    assert torch.equal(objective(model, x)["loss"], evaluated["loss"])

    model.train()
    trained = objective(model, x)
    assert set(trained) == {"loss", "reconstruction_loss", "sparsity_penalty", "contractive_penalty"}
    expected = trained["reconstruction_loss"] + trained["sparsity_penalty"] + trained["contractive_penalty"]
    torch.testing.assert_close(trained["loss"], expected)
    assert trained["reconstruction_loss"] > plain(model, x)["reconstruction_loss"]


def test_variational_objective_terms():
    torch.manual_seed(0)
    model = VariationalAutoencoder(VariationalConfig(input_shape=(8,), latent_dim=2, hidden_dims=(4,)))
    objective = VariationalObjective(beta=3.0)
    losses = objective(model.train(), torch.rand(16, 8))
    assert VariationalObjective.monitor == "negative_elbo"
    torch.testing.assert_close(losses["negative_elbo"], losses["reconstruction_loss"] + losses["kl_divergence"])
    torch.testing.assert_close(losses["loss"], losses["reconstruction_loss"] + 3.0 * losses["kl_divergence"])
    assert losses["kl_divergence"] > 0


def test_kl_warmup_raises_weight_linearly():
    torch.manual_seed(0)
    model = VariationalAutoencoder(VariationalConfig(input_shape=(8,), latent_dim=2, hidden_dims=(4,)))
    objective = VariationalObjective(beta=2.0)
    weights = []

    class Recorder(KLWarmup):
        def on_epoch_start(self, trainer, epoch):
            super().on_epoch_start(trainer, epoch)
            weights.append(trainer.objective.kl_weight)

    trainer = Trainer(
        model,
        objective,
        torch.optim.Adam(model.parameters()),
        batch_size=8,
        max_epochs=6,
        generator=torch.Generator().manual_seed(0),
        callbacks=[Recorder(4)],
    )
    trainer.fit(torch.rand(16, 8))
    assert weights == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0])
    assert objective.kl_weight == 2.0


def test_trainer_validates_the_monitored_entry():
    torch.manual_seed(0)
    model = VariationalAutoencoder(VariationalConfig(input_shape=(8,), latent_dim=2, hidden_dims=(4,)))
    objective = VariationalObjective(beta=0.0)
    trainer = Trainer(
        model, objective, torch.optim.Adam(model.parameters()), batch_size=8, max_epochs=1,
        generator=torch.Generator().manual_seed(0),
    )
    x_val = torch.rand(32, 8)
    history = trainer.fit(torch.rand(16, 8), x_val)
    torch.manual_seed(1)
    expected = objective(model.eval(), x_val)["negative_elbo"].item()
    torch.manual_seed(1)
    assert trainer.evaluate(x_val) == pytest.approx(expected, rel=1e-6)
    assert history.val_loss[0] > 0
