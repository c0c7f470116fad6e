import pytest
import torch

from aekit.exceptions import ConfigError
from aekit.models import MODELS, AutoencoderOutput, DenseAutoencoder, DenseConfig


def make_model(**overrides) -> DenseAutoencoder:
    values = dict(input_dim=12, latent_dim=3, hidden_dims=(16, 8))
    values.update(overrides)
    return DenseAutoencoder(DenseConfig(**values))


def test_forward_shapes():
    out = make_model()(torch.randn(5, 12))
    assert isinstance(out, AutoencoderOutput)
    assert out.x_recon.shape == (5, 12)
    assert out.z.shape == (5, 3)
    assert out.mu is None
    assert out.logvar is None


def test_decoder_mirrors_encoder():
    model = make_model(hidden_dims=(32, 16), batch_norm=False)
    encoder_widths = [m.out_features for m in model.encoder if isinstance(m, torch.nn.Linear)]
    decoder_widths = [m.out_features for m in model.decoder if isinstance(m, torch.nn.Linear)]
    assert encoder_widths == [32, 16, 3]
    assert decoder_widths == [16, 32, 12]


def test_sigmoid_output_in_unit_range():
    out = make_model(output_activation="sigmoid")(100 * torch.randn(8, 12))
    assert out.x_recon.min() >= 0
    assert out.x_recon.max() <= 1


def test_dropout_and_batch_norm_layers_present():
    model = make_model(dropout=0.3, batch_norm=True)
    kinds = [type(m).__name__ for m in model.modules()]
    assert kinds.count("Dropout") == 4
    assert kinds.count("BatchNorm1d") == 4
    plain = make_model(dropout=0.0, batch_norm=False)
    assert not any(isinstance(m, (torch.nn.Dropout, torch.nn.BatchNorm1d)) for m in plain.modules())


def test_no_hidden_layers_gives_shallow_model():
    model = make_model(hidden_dims=())
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(12, 3), (3, 12)]


def test_loss_falls_over_steps():
    torch.manual_seed(0)
    model = make_model()
    x = torch.randn(64, 12)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = (model(x).x_recon - x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.7 * losses[0]


def test_config_round_trip_rebuilds_same_shapes():
    model = make_model(activation="tanh", dropout=0.1)
    rebuilt = DenseAutoencoder.from_config_dict(model.config_dict())
    assert rebuilt.config == model.config
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"latent_dim": 0}, "latent_dim must be a positive integer, got 0"),
        ({"hidden_dims": (16, -2)}, "hidden_dims[1] must be a positive integer, got -2"),
        ({"activation": "swish"}, "activation must be one of"),
        ({"output_activation": "softmax"}, "output_activation must be one of"),
        ({"dropout": 1.0}, "dropout must be a number in [0, 1), got 1.0"),
    ],
)
def test_invalid_config_names_value(overrides, fragment):
    with pytest.raises(ConfigError) as info:
        make_model(**overrides)
    assert fragment in str(info.value)


def test_registry_knows_dense():
    assert MODELS["dense"] is DenseAutoencoder
