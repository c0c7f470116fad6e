import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import aekit
from aekit.cli.main import main


@pytest.fixture
def run(capsys):
    """Run the CLI in-process; return (exit status, stdout, stderr)."""

    def invoke(*args):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as done:
            code = done.code
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def table_csv(tmp_path, table):
    path = tmp_path / "table.csv"
    pd.DataFrame(table, columns=[f"f{i}" for i in range(6)]).to_csv(path, index=False)
    return path


@pytest.fixture
def trained(run, tmp_path, table_csv):
    out = tmp_path / "model"
    code, _, err = run("train", table_csv, "--latent-dim", 2, "--hidden-dims", "16", "--epochs", 20, "--seed", 0, "--out", out)
    assert code == 0, err
    return out


def test_train_on_embedded_digits_beats_pca(run, tmp_path):
    out = tmp_path / "digits"
    code, stdout, _ = run("train", "--latent-dim", 8, "--seed", 0, "--out", out)
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val_mse"] < metrics["pca_val_mse"]
    assert metrics["n_train"] + metrics["n_val"] == 1797
    assert metrics["pca_components"] == 8
    assert "embedded digits" in stdout
    assert "x PCA" in stdout
    assert (out / "model.safetensors").is_file()
    assert (out / "config.json").is_file()


def test_train_options_reach_the_estimator(trained):
    model = aekit.load(trained)
    assert model.latent_dim_ == 2
    assert model.hidden_dims_ == (16,)
    assert model.max_epochs == 20
    assert model.random_state == 0
    assert list(model.feature_names_in_) == [f"f{i}" for i in range(6)]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_encode_reconstruct_score_round_trip(run, trained, table_csv, tmp_path, suffix):
    model = aekit.load(trained)
    frame = pd.read_csv(table_csv)

    code, _, _ = run("encode", trained, table_csv, "--out", tmp_path / f"codes{suffix}")
    assert code == 0
    code, _, _ = run("reconstruct", trained, table_csv, "--out", tmp_path / f"recon{suffix}")
    assert code == 0
    code, _, _ = run("score", trained, table_csv, "--out", tmp_path / f"scores{suffix}")
    assert code == 0

    def read(name):
        path = tmp_path / f"{name}{suffix}"
        if suffix == ".npy":
            return np.load(path)
        return (pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)).to_numpy()

    np.testing.assert_array_equal(read("codes").astype(np.float32), model.transform(frame))
    np.testing.assert_array_equal(read("recon").astype(np.float32), model.reconstruct(frame))
    np.testing.assert_array_equal(read("scores")[:, 0].astype(np.float32), model.reconstruction_error(frame))
    if suffix != ".npy":
        header = pd.read_csv(tmp_path / "recon.csv") if suffix == ".csv" else pd.read_parquet(tmp_path / "recon.parquet")
        assert list(header.columns) == [f"f{i}" for i in range(6)]


def test_info_lists_layers_and_compression(run, trained):
    code, out, _ = run("info", trained)
    assert code == 0
    assert "encoder.0  Linear       6 -> 16" in out
    assert "compression ratio: 6 / 2 = 3.0" in out
    n_parameters = sum(p.numel() for p in aekit.load(trained).model_.parameters())
    assert f"total parameters: {n_parameters:,}" in out


def assert_one_line_error(code, err, *fragments):
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("aekit: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_data_file(run, tmp_path):
    code, _, err = run("train", tmp_path / "nope.csv", "--out", tmp_path / "m")
    assert_one_line_error(code, err, "nope.csv' not found; check the path")


def test_empty_data_file(run, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    code, _, err = run("train", tmp_path / "empty.csv", "--out", tmp_path / "m")
    assert_one_line_error(code, err, "empty.csv' is empty")


def test_unreadable_data_file(run, tmp_path):
    (tmp_path / "garbage.parquet").write_bytes(b"\x00\x01 not parquet")
    code, _, err = run("train", tmp_path / "garbage.parquet", "--out", tmp_path / "m")
    assert_one_line_error(code, err, "cannot be read as Parquet")


def test_non_numeric_column(run, tmp_path, table):
    frame = pd.DataFrame(table[:, :2], columns=["a", "b"])
    frame["city"] = "Lyon"
    frame.to_csv(tmp_path / "mixed.csv", index=False)
    code, _, err = run("train", tmp_path / "mixed.csv", "--model", "vae", "--out", tmp_path / "m")
    assert_one_line_error(code, err, "non-numeric columns 'city'", "drop or encode them")
    # A plain autoencoder takes the text column as categorical.
    code, _, err = run("train", tmp_path / "mixed.csv", "--epochs", 2, "--no-report", "--out", tmp_path / "m")
    assert code == 0, err


def test_nan_values(run, tmp_path, table):
    frame = pd.DataFrame(table, columns=list("abcdef"))
    frame.loc[2, "c"] = np.nan
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    code, _, err = run("train", tmp_path / "gaps.csv", "--out", tmp_path / "m")
    assert_one_line_error(code, err, "NaN or infinite values in column 'c' (1 value)")


def test_wrong_columns_for_model(run, trained, tmp_path, table):
    pd.DataFrame(table[:, :4], columns=["f0", "f1", "f2", "f3"]).to_csv(tmp_path / "narrow.csv", index=False)
    code, _, err = run("score", trained, tmp_path / "narrow.csv", "--out", tmp_path / "s.csv")
    assert_one_line_error(code, err, "missing ['f4', 'f5']")


def test_wrong_column_count_without_names(run, tmp_path, table):
    np.save(tmp_path / "six.npy", table)
    np.save(tmp_path / "four.npy", table[:, :4])
    code, _, _ = run("train", tmp_path / "six.npy", "--epochs", 2, "--out", tmp_path / "m")
    assert code == 0
    code, _, err = run("encode", tmp_path / "m", tmp_path / "four.npy", "--out", tmp_path / "c.csv")
    assert_one_line_error(code, err, "X has 4 features, but AutoEncoder is expecting 6 features")


def test_unknown_option_value(run, table_csv, tmp_path):
    code, _, err = run("train", table_csv, "--activation", "swish", "--out", tmp_path / "m")
    assert_one_line_error(code, err, "'swish' is not one of", "relu")
    assert code == 2


def test_bad_hidden_dims(run, table_csv, tmp_path):
    code, _, err = run("train", table_csv, "--hidden-dims", "64,abc", "--out", tmp_path / "m")
    assert_one_line_error(code, err, "'64,abc' is not a comma-separated list of integers")


def test_bad_output_extension(run, trained, table_csv, tmp_path):
    code, _, err = run("score", trained, table_csv, "--out", tmp_path / "scores.xlsx")
    assert_one_line_error(code, err, "unsupported extension '.xlsx'; use .csv, .parquet or .npy")


def test_missing_model_folder(run, table_csv, tmp_path):
    code, _, err = run("encode", tmp_path / "no-model", table_csv, "--out", tmp_path / "c.csv")
    assert_one_line_error(code, err, "no-model' not found")


def test_wide_latent_warns_and_trains(run, table_csv, tmp_path):
    code, _, err = run("train", table_csv, "--latent-dim", 6, "--epochs", 2, "--out", tmp_path / "m")
    assert code == 0
    assert "aekit: warning: latent_dim=6 is not smaller than the 6 input features" in err


def test_entry_point_and_module_run_without_traceback(tmp_path):
    version = subprocess.run(["aekit", "--version"], capture_output=True, text=True, check=True)
    assert aekit.__version__ in version.stdout

    result = subprocess.run(
        [sys.executable, "-m", "aekit", "train", str(tmp_path / "missing.csv")], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"aekit: error: data file '{tmp_path / 'missing.csv'}' not found; check the path."]
