"""Checks on the real data sets in ../shared/data; each skips when the data is absent."""

import json

import numpy as np
import pandas as pd
import pytest

import aekit
from aekit.cli.main import main
from aekit.data import read_data


def run_cli(*args):
    try:
        main([str(a) for a in args])
    except SystemExit as done:
        assert done.code == 0, f"aekit {' '.join(map(str, args))} exited with {done.code}"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_adbench_cli_round_trip(shared_data, tmp_path, suffix):
    with np.load(shared_data / "adbench" / "6_cardio.npz", allow_pickle=False) as archive:
        frame = pd.DataFrame(archive["X"], columns=[f"x{i}" for i in range(archive["X"].shape[1])])
    data = tmp_path / f"cardio{suffix}"
    frame.to_csv(data, index=False) if suffix == ".csv" else frame.to_parquet(data, index=False)

    model_dir = tmp_path / "model"
    run_cli("train", data, "--seed", 0, "--epochs", 30, "--out", model_dir)
    for command in ("encode", "reconstruct", "score"):
        run_cli(command, model_dir, data, "--out", tmp_path / f"{command}{suffix}")

    def read(name):
        path = tmp_path / f"{name}{suffix}"
        return (pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)).to_numpy(dtype=np.float32)

    model = aekit.load(model_dir)
    X = read_data(data).X
    np.testing.assert_array_equal(read("encode"), model.transform(X))
    np.testing.assert_array_equal(read("reconstruct"), model.reconstruct(X))
    np.testing.assert_array_equal(read("score")[:, 0], model.reconstruction_error(X))

    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["n_train"] == 1465
    assert metrics["n_val"] == 366
    assert np.isfinite(metrics["val_mse"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "hidden_dims, max_ratio",
    [(None, 0.55), ("1000,500,250", 0.75)],
    ids=["default-network", "hinton-2006-network"],
)
def test_mnist_beats_pca(shared_data, tmp_path, hidden_dims, max_ratio):
    images = shared_data / "mnist" / "t10k-images-idx3-ubyte.gz"
    args = ["train", images, "--latent-dim", 30, "--seed", 0, "--out", tmp_path / "m"]
    if hidden_dims:
        args += ["--hidden-dims", hidden_dims]
    run_cli(*args)

    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["n_train"] == 8000
    assert metrics["n_val"] == 2000
    assert metrics["pca_components"] == 30
    assert metrics["val_mse"] <= max_ratio * metrics["pca_val_mse"], metrics
