"""``aekit train --model NAME``, ``aekit denoise`` and ``aekit generate``."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import aekit
from aekit.cli.models import PRESET_BETA, PRESET_CONTRACTIVE_WEIGHT
from test_cli import assert_one_line_error, run  # noqa: F401 (run is a fixture)
from torch_threads import one_torch_thread  # noqa: F401 (an autouse fixture)

# Small networks and few epochs, on the embedded digits unless a test passes data.
FAST = ["--latent-dim", 4, "--hidden-dims", "16", "--channels", "4,8", "--epochs", 3, "--seed", 0]


@pytest.fixture
def digits_npy(tmp_path):
    from sklearn.datasets import load_digits

    path = tmp_path / "digits.npy"
    np.save(path, load_digits().images[:300].astype(np.float32))  # (300, 8, 8): grey images
    return path


@pytest.mark.parametrize(
    "model, extra, expected",
    [
        ("dense", [], {"model_name": "dense", "noise": "none", "sparsity": "none", "contractive_weight": 0.0}),
        ("conv", ["--noise", "masking"], {"model_name": "conv", "noise": "masking", "channels": (4, 8)}),
        ("denoising", [], {"model_name": "dense", "noise": "masking"}),
        ("denoising", ["--noise", "gaussian", "--noise-std", 0.2], {"noise": "gaussian", "noise_std": 0.2}),
        ("sparse", ["--sparsity", "kl", "--sparsity-target", 0.1], {"sparsity": "kl", "sparsity_target": 0.1}),
        ("sparse", ["--tied-weights"], {"sparsity": "l1", "tied_weights": True}),
        ("contractive", [], {"contractive_weight": PRESET_CONTRACTIVE_WEIGHT}),
        ("vae", ["--kl-warmup-epochs", 2], {"model_name": "vae", "beta": 1.0, "kl_warmup_epochs": 2}),
        ("beta-vae", ["--architecture", "conv"], {"model_name": "vae", "beta": PRESET_BETA, "architecture": "conv"}),
        ("beta-vae", ["--beta", 2.5, "--likelihood", "gaussian"], {"beta": 2.5, "likelihood": "gaussian"}),
    ],
)
def test_train_model_names_and_pieces(run, tmp_path, digits_npy, model, extra, expected):
    out = tmp_path / "m"
    code, stdout, err = run("train", digits_npy, "--model", model, *FAST, *extra, "--out", out)
    assert code == 0, err
    estimator = aekit.load(out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == estimator.model_.name
    for name, value in expected.items():
        actual = estimator.model_.name if name == "model_name" else getattr(estimator, name)
        assert actual == value, name
    assert "network:" in stdout


def test_vae_train_reports_elbo(run, tmp_path, digits_npy):
    out = tmp_path / "vae"
    code, stdout, _ = run("train", digits_npy, "--model", "vae", *FAST, "--out", out)
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"val_elbo", "val_kl_divergence", "kl_per_unit", "active_units"} <= set(metrics)
    assert f"validation ELBO {metrics['val_elbo']:.5g} nats per sample" in stdout
    code, info, _ = run("info", out)
    assert code == 0
    assert "latent units active" in info
    assert "mu_head" in info


def test_conv_info_counts_convolution_weights(run, tmp_path, digits_npy):
    out = tmp_path / "conv"
    assert run("train", digits_npy, "--model", "conv", *FAST, "--out", out)[0] == 0
    code, info, _ = run("info", out)
    assert code == 0
    assert "Conv2d           1 -> 4, 3x3, stride 2" in info
    n_parameters = sum(p.numel() for p in aekit.load(out).model_.parameters())
    assert f"total parameters: {n_parameters:,}" in info


def test_denoise_writes_estimator_output(run, tmp_path, digits_npy):
    out = tmp_path / "m"
    assert run("train", digits_npy, "--model", "denoising", *FAST, "--out", out)[0] == 0
    code, _, err = run("denoise", out, digits_npy, "--out", tmp_path / "clean.npy")
    assert code == 0, err
    expected = aekit.load(out).denoise(np.load(digits_npy)).reshape(300, -1)
    np.testing.assert_array_equal(np.load(tmp_path / "clean.npy"), expected)


def test_denoise_with_plain_model_warns(run, tmp_path, digits_npy):
    out = tmp_path / "m"
    assert run("train", digits_npy, *FAST, "--out", out)[0] == 0
    code, _, err = run("denoise", out, digits_npy, "--out", tmp_path / "clean.csv")
    assert code == 0
    assert "aekit: warning: this AutoEncoder was trained with noise='none'" in err
    assert len(pd.read_csv(tmp_path / "clean.csv")) == 300


@pytest.fixture
def trained_vae(run, tmp_path, digits_npy):
    out = tmp_path / "vae"
    assert run("train", digits_npy, "--model", "vae", *FAST, "--out", out)[0] == 0
    return out


def test_generate_png_grid_in_folder(run, tmp_path, trained_vae):
    code, stdout, _ = run("generate", trained_vae, "-n", 10, "--seed", 1, "--out", tmp_path / "gen")
    assert code == 0
    path = tmp_path / "gen" / "samples.png"
    assert f"wrote a grid of 10 samples to {path}" in stdout
    with Image.open(path) as image:
        # 10 samples in a 4 x 3 grid of 32-pixel cells (8 x 8 enlarged 4 times), 2-pixel borders.
        assert image.mode == "L"
        assert image.size == (4 * 34 + 2, 3 * 34 + 2)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_generate_tables_match_sample(run, tmp_path, trained_vae, suffix):
    path = tmp_path / f"samples{suffix}"
    code, _, _ = run("generate", trained_vae, "-n", 5, "--seed", 2, "--out", path)
    assert code == 0
    expected = aekit.load(trained_vae).sample(5, random_state=2).reshape(5, -1)
    if suffix == ".npy":
        written = np.load(path)
    else:
        written = (pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)).to_numpy(np.float32)
    np.testing.assert_array_equal(written, expected)


def test_generate_for_table_model_writes_csv(run, tmp_path):
    table = pd.DataFrame(np.random.default_rng(0).normal(size=(120, 5)), columns=list("abcde"))
    table.to_csv(tmp_path / "t.csv", index=False)
    assert run("train", tmp_path / "t.csv", "--model", "vae", *FAST, "--out", tmp_path / "m")[0] == 0
    code, _, _ = run("generate", tmp_path / "m", "-n", 4, "--out", tmp_path / "gen")
    assert code == 0
    assert list(pd.read_csv(tmp_path / "gen" / "samples.csv").columns) == list("abcde")
    code, _, err = run("generate", tmp_path / "m", "--out", tmp_path / "grid.png")
    assert_one_line_error(code, err, "grid.png' is a PNG, but the model was trained on a table")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--model", "vae", "--sparsity", "l1"], "--sparsity applies to autoencoders"),
        (["--model", "beta-vae", "--tied-weights"], "--tied-weights applies to autoencoders"),
        (["--model", "vae", "--loss", "bce"], "--loss applies to autoencoders"),
        (["--model", "conv", "--beta", 2], "--beta applies to variational models (--model vae or beta-vae)"),
        (["--model", "dense", "--architecture", "conv"], "--model dense conflicts with --architecture conv"),
        (["--model", "denoising", "--noise", "none"], "--model denoising needs input noise"),
        (["--model", "sparse", "--sparsity", "none"], "--model sparse needs a penalty"),
        (["--model", "contractive", "--contractive-weight", 0], "--model contractive needs a positive"),
        (["--model", "unet"], "'unet' is not one of"),
        (["--channels", "32,x"], "'32,x' is not a comma-separated list of integers"),
        (["--noise-fraction", 1.5], "1.5 is not in the range 0<=x<=1"),
    ],
)
def test_invalid_model_options(run, tmp_path, args, fragment):
    code, _, err = run("train", *args, "--out", tmp_path / "m")
    assert_one_line_error(code, err, fragment)
    assert code == 2


def test_conv_on_table_is_one_line_error(run, tmp_path):
    pd.DataFrame(np.ones((10, 3)), columns=list("abc")).to_csv(tmp_path / "t.csv", index=False)
    code, _, err = run("train", tmp_path / "t.csv", "--model", "conv", "--out", tmp_path / "m")
    assert_one_line_error(code, err, "architecture='conv' needs images")
    assert code == 1


def test_generate_needs_variational_model(run, tmp_path, digits_npy):
    assert run("train", digits_npy, *FAST, "--out", tmp_path / "m")[0] == 0
    code, _, err = run("generate", tmp_path / "m", "--out", tmp_path / "gen")
    assert_one_line_error(code, err, "is not a variational model (it is a dense AutoEncoder)", "--model vae")


def test_generate_rejects_unknown_extension(run, tmp_path, trained_vae):
    code, _, err = run("generate", trained_vae, "--out", tmp_path / "samples.gif")
    assert_one_line_error(code, err, "unsupported extension '.gif'")


def test_conv_trains_on_rgb_image_folder(run, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(24):
        pixels = rng.integers(0, 256, size=(7, 9, 3), dtype=np.uint8)  # height 7, width 9
        Image.fromarray(pixels, mode="RGB").save(folder / f"{index:02d}.png")

    out = tmp_path / "m"
    code, stdout, err = run("train", folder, "--model", "conv", *FAST, "--out", out)
    assert code == 0, err
    assert "24 images of 3 x 7 x 9" in stdout
    assert "network: 3x7x9 -> conv 4 -> conv 8 -> 4 (mirrored decoder)" in stdout

    code, _, _ = run("reconstruct", out, folder, "--out", tmp_path / "recon.npy")
    assert code == 0
    assert np.load(tmp_path / "recon.npy").shape == (24, 3 * 7 * 9)


def test_help_defaults_match_estimators(run):
    import inspect

    code, help_text, _ = run("train", "--help")
    assert code == 0
    text = " ".join(help_text.split())
    for name in ("noise_std", "noise_fraction", "sparsity_weight", "sparsity_target", "contractive_weight"):
        default = inspect.signature(aekit.AutoEncoder).parameters[name].default
        assert f"[default: {default:g}]" in text, name
    vae_defaults = inspect.signature(aekit.VariationalAutoEncoder).parameters
    assert f"[default: {vae_defaults['beta'].default:g} for vae" in text
    assert f"linearly to --beta [default: {vae_defaults['kl_warmup_epochs'].default}]" in text
