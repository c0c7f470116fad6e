import json

import numpy as np
import pandas as pd
import pytest
import torch

import aekit
from aekit import AutoEncoder, ModelFileError
from aekit.serialization import FORMAT_VERSION
from conftest import small_params


@pytest.fixture
def fitted(table):
    return AutoEncoder(**small_params(dropout=0.1)).fit(pd.DataFrame(table, columns=list("abcdef")))


def test_round_trip_gives_identical_outputs(fitted, table, tmp_path):
    fitted.save(tmp_path / "m")
    loaded = aekit.load(tmp_path / "m")
    frame = pd.DataFrame(table, columns=list("abcdef"))
    np.testing.assert_array_equal(loaded.transform(frame), fitted.transform(frame))
    np.testing.assert_array_equal(loaded.reconstruct(frame), fitted.reconstruct(frame))
    np.testing.assert_array_equal(loaded.reconstruction_error(frame), fitted.reconstruction_error(frame))
    codes = fitted.transform(frame)
    np.testing.assert_array_equal(loaded.inverse_transform(codes), fitted.inverse_transform(codes))
    assert loaded.get_params() == fitted.get_params()
    assert list(loaded.feature_names_in_) == list("abcdef")
    assert loaded.history_ == fitted.history_
    assert loaded.metrics_ == fitted.metrics_


def test_folder_holds_only_safetensors_and_json(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["format_version"] == FORMAT_VERSION
    assert config["aekit_version"] == aekit.__version__
    assert config["model"]["name"] == "dense"
    assert config["preprocessing"]["kind"] == "standard"
    assert len(config["preprocessing"]["offset"]) == 6
    assert len(config["training"]["history"]["train_loss"]) == fitted.history_.n_epochs


def test_saving_again_overwrites(fitted, table, tmp_path):
    fitted.save(tmp_path / "m")
    other = AutoEncoder(**small_params(random_state=5)).fit(pd.DataFrame(table, columns=list("abcdef")))
    other.save(tmp_path / "m")
    assert aekit.load(tmp_path / "m").seed_ == 5
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.endswith(".tmp")]


def test_tampered_weights_are_rejected(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="does not match the checksum"):
        aekit.load(tmp_path / "m")


def test_truncated_weights_are_rejected(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    config["weights_sha256"] = None  # skip the checksum to reach the safetensors reader
    config_path.write_text(json.dumps(config))
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="is not a valid safetensors file"):
        aekit.load(tmp_path / "m")


def test_newer_format_is_rejected(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    config["format_version"] = FORMAT_VERSION + 1
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match=f"uses model format version {FORMAT_VERSION + 1}.*Upgrade aekit"):
        aekit.load(tmp_path / "m")


def test_wrong_shape_in_config_is_rejected(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    config["model"]["config"]["latent_dim"] = 5
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="invalid config or weights"):
        aekit.load(tmp_path / "m")


@pytest.mark.parametrize(
    "setup, fragment",
    [
        (lambda folder: None, "not found"),
        (lambda folder: folder.mkdir(), "has no config.json"),
        (lambda folder: (folder.mkdir(), (folder / "config.json").write_text("{not json")), "is not valid JSON"),
        (lambda folder: (folder.mkdir(), (folder / "config.json").write_text("{}")), "is not an aekit model config"),
    ],
)
def test_missing_or_foreign_folders(tmp_path, setup, fragment):
    folder = tmp_path / "m"
    setup(folder)
    with pytest.raises(ModelFileError, match=fragment):
        aekit.load(folder)


def test_weights_saved_from_cpu(fitted, tmp_path):
    from safetensors.torch import load_file

    fitted.save(tmp_path / "m")
    tensors = load_file(str(tmp_path / "m" / "model.safetensors"))
    assert all(t.device == torch.device("cpu") for t in tensors.values())
    weights = {name for name in tensors if not name.startswith("extra/")}
    assert weights == set(fitted.model_.state_dict())


def test_detector_round_trip_keeps_threshold(table, tmp_path):
    detector = aekit.AnomalyDetector(AutoEncoder(**small_params()), fpr=0.1, random_state=0).fit(table)
    detector.save(tmp_path / "det")
    config = json.loads((tmp_path / "det" / "config.json").read_text())
    assert config["estimator"] == "AutoEncoder"
    assert config["wrapper"]["estimator"] == "AnomalyDetector"
    assert config["wrapper"]["params"]["fpr"] == 0.1
    assert len(config["wrapper"]["state"]["calibration_errors"]) == 40

    loaded = aekit.load(tmp_path / "det")
    assert loaded.threshold_ == detector.threshold_
    np.testing.assert_array_equal(loaded.predict(table), detector.predict(table))
    np.testing.assert_array_equal(loaded.p_values(table), detector.p_values(table))


def test_unknown_wrapper_is_rejected(table, tmp_path):
    aekit.AnomalyDetector(AutoEncoder(**small_params()), random_state=0).fit(table).save(tmp_path / "det")
    config_path = tmp_path / "det" / "config.json"
    config = json.loads(config_path.read_text())
    config["wrapper"]["estimator"] = "Ensemble"
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="names the wrapper estimator 'Ensemble'"):
        aekit.load(tmp_path / "det")
