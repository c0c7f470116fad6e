"""Model files are data, never code: hostile, damaged and half-written folders are refused
with a clear error, and a failed save leaves the previous model whole."""

import hashlib
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import aekit
from aekit import AnomalyDetector, AutoEncoder, ModelFileError
from aekit import serialization
from aekit.serialization import FORMAT_VERSION
from conftest import small_params

SOURCE = Path(aekit.__file__).parent


class CodePayload:
    """Unpickling this object creates ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def model_folder(table, tmp_path):
    estimator = AutoEncoder(**small_params()).fit(table)
    folder = tmp_path / "model"
    estimator.save(folder)
    return estimator, folder


def _edit_config(folder: Path, edit) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


def test_payload_runs_code_when_unpickled(tmp_path):
    # Guards the tests below: the payload is live, so a loader that unpickled it would leave the marker.
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(CodePayload(marker)))
    assert marker.exists()


def test_pickle_weights_rejected_unrun(model_folder, tmp_path):
    _, folder = model_folder
    marker = tmp_path / "marker"
    payload = pickle.dumps(CodePayload(marker))
    (folder / "model.safetensors").write_bytes(payload)
    # The checksum matches the payload, so loading reaches the weights reader itself.
    _edit_config(folder, lambda config: config.update(weights_sha256=hashlib.sha256(payload).hexdigest()))

    with pytest.raises(ModelFileError, match="model.safetensors' is not a valid safetensors file"):
        aekit.load(folder)
    assert not marker.exists()


def test_pickle_weights_checksum_rejected(model_folder, tmp_path):
    _, folder = model_folder
    marker = tmp_path / "marker"
    (folder / "model.safetensors").write_bytes(pickle.dumps(CodePayload(marker)))

    with pytest.raises(ModelFileError, match="does not match the checksum in config.json"):
        aekit.load(folder)
    assert not marker.exists()


def test_torch_and_pickle_files_ignored(model_folder, tmp_path):
    _, folder = model_folder
    marker = tmp_path / "marker"
    (folder / "model.safetensors").unlink()
    torch.save({"state_dict": CodePayload(marker)}, folder / "model.pt")
    (folder / "model.pkl").write_bytes(pickle.dumps(CodePayload(marker)))

    with pytest.raises(ModelFileError, match="has no model.safetensors"):
        aekit.load(folder)
    assert not marker.exists()


def test_library_never_unpickles():
    unsafe = re.compile(r"torch\.load\(|pickle\.loads?\(|import pickle|allow_pickle=True|weights_only=False")
    offenders = [
        f"{path.relative_to(SOURCE)}:{number}"
        for path in SOURCE.rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if unsafe.search(line)
    ]
    assert offenders == []


def test_truncated_weights_are_refused(model_folder):
    _, folder = model_folder
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-50])
    with pytest.raises(ModelFileError, match="does not match the checksum.*Save the model again"):
        aekit.load(folder)


def test_changed_bytes_are_refused(model_folder):
    _, folder = model_folder
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="damaged or comes from another model"):
        aekit.load(folder)


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda c: c["model"]["config"].update(hidden_dims=[8]), r"size mismatch for encoder"),
        (lambda c: c["model"]["config"].update(latent_dim=3), r"size mismatch"),
        (lambda c: c["data"].update(input_shape=[7]), r"input_shape \(7,\) does not hold 6 features"),
        (lambda c: c.pop("model"), r"lacks the entry 'model'"),
        (lambda c: c["training"].pop("seed"), r"lacks the entry 'seed'"),
    ],
)
def test_config_mismatching_weights_rejected(model_folder, edit, fragment):
    _, folder = model_folder
    _edit_config(folder, edit)
    with pytest.raises(ModelFileError, match=fragment):
        aekit.load(folder)


def test_invalid_json_is_refused(model_folder):
    _, folder = model_folder
    path = folder / "config.json"
    path.write_text(path.read_text()[:-20])
    with pytest.raises(ModelFileError, match="config.json' is not valid JSON"):
        aekit.load(folder)


def test_newer_format_asks_to_upgrade(model_folder):
    _, folder = model_folder
    _edit_config(folder, lambda c: c.update(format_version=FORMAT_VERSION + 1, aekit_version="99.0"))
    with pytest.raises(
        ModelFileError, match=rf"format version {FORMAT_VERSION + 1}, written by aekit 99.0.*Upgrade aekit"
    ):
        aekit.load(folder)


def _leftovers(folder: Path) -> list[str]:
    names = [p.name for p in folder.parent.iterdir()] + [p.name for p in folder.iterdir()]
    return [name for name in names if name.endswith(".tmp")]


@pytest.mark.parametrize("failing", ["save_file", "estimator_config", "render_model_card"])
def test_failed_save_keeps_the_previous_model(model_folder, table, monkeypatch, failing):
    first, folder = model_folder
    (folder / "metrics.json").write_text("{}")
    second = AutoEncoder(**small_params(random_state=7)).fit(table)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(serialization, failing, fail)
    with pytest.raises(OSError, match="disk full"):
        second.save(folder)

    loaded = aekit.load(folder)
    np.testing.assert_array_equal(loaded.reconstruction_error(table), first.reconstruction_error(table))
    assert loaded.seed_ == 0
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "metrics.json", "model.safetensors"]
    assert _leftovers(folder) == []


def test_failed_swap_puts_the_previous_folder_back(model_folder, table, monkeypatch):
    first, folder = model_folder
    second = AutoEncoder(**small_params(random_state=7)).fit(table)
    rename = serialization.os.rename

    def rename_failing_into_place(source, target):
        if Path(target) == folder and ".previous." not in Path(source).name:
            raise OSError("device busy")
        rename(source, target)

    monkeypatch.setattr(serialization.os, "rename", rename_failing_into_place)
    with pytest.raises(OSError, match="device busy"):
        second.save(folder)
    np.testing.assert_array_equal(aekit.load(folder).reconstruction_error(table), first.reconstruction_error(table))
    assert _leftovers(folder) == []


def test_save_replaces_the_model_and_keeps_other_files(model_folder, table):
    _, folder = model_folder
    (folder / "metrics.json").write_text('{"kept": true}')
    (folder / "report").mkdir()
    (folder / "report" / "report.html").write_text("<html></html>")
    second = AutoEncoder(**small_params(random_state=7)).fit(table)
    second.save(folder)

    loaded = aekit.load(folder)
    assert loaded.seed_ == 7
    np.testing.assert_array_equal(loaded.reconstruction_error(table), second.reconstruction_error(table))
    assert json.loads((folder / "metrics.json").read_text()) == {"kept": True}
    assert (folder / "report" / "report.html").read_text() == "<html></html>"
    assert json.loads((folder / "config.json").read_text())["params"]["random_state"] == 7
    assert _leftovers(folder) == []


def test_save_into_the_working_directory(model_folder, table, monkeypatch):
    _, folder = model_folder
    second = AutoEncoder(**small_params(random_state=7)).fit(table)
    monkeypatch.chdir(folder)
    second.save(".")
    assert Path.cwd() == folder.resolve()
    assert aekit.load(folder).seed_ == 7
    assert _leftovers(folder) == []


def test_interrupted_swap_is_explained(model_folder):
    _, folder = model_folder
    # The state a crash between the two renames of a save leaves behind.
    hidden = folder.parent / f".{folder.name}.previous.123.abcd1234.tmp"
    folder.rename(hidden)
    with pytest.raises(ModelFileError, match=r"a save into it was interrupted; the previous model is whole in"):
        aekit.load(folder)
    hidden.rename(folder)
    assert aekit.load(folder).seed_ == 0


def test_failed_detector_save_keeps_the_previous_detector(table, tmp_path, monkeypatch):
    first = AnomalyDetector(AutoEncoder(**small_params()), contamination=0.05, random_state=0).fit(table)
    folder = tmp_path / "detector"
    first.save(folder)
    second = AnomalyDetector(AutoEncoder(**small_params()), contamination=0.2, random_state=1).fit(table)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(serialization, "render_model_card", fail)
    with pytest.raises(OSError, match="disk full"):
        second.save(folder)
    loaded = aekit.load(folder)
    assert loaded.threshold_ == first.threshold_
    np.testing.assert_array_equal(loaded.predict(table), first.predict(table))
    assert "contamination" in (folder / "README.md").read_text()
    assert _leftovers(folder) == []


class AcceleratorTensor(torch.Tensor):
    """Stands in for a tensor in accelerator memory: it reports a CUDA device, and
    records the devices it is copied to."""

    copied_to: list = []

    @property
    def device(self):
        return torch.device("cuda", 0)

    def to(self, *args, **kwargs):
        AcceleratorTensor.copied_to.append(torch.device(args[0] if args else kwargs["device"]))
        return torch.Tensor(self).clone()


def test_weights_are_copied_to_the_cpu_before_writing(model_folder, table, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    estimator, _ = model_folder
    plain = estimator.model_.state_dict()
    on_accelerator = {name: torch.Tensor._make_subclass(AcceleratorTensor, t) for name, t in plain.items()}
    monkeypatch.setattr(AcceleratorTensor, "copied_to", [])
    monkeypatch.setattr(estimator.model_, "state_dict", lambda: on_accelerator)
    estimator.save(tmp_path / "from-gpu")

    assert AcceleratorTensor.copied_to == [torch.device("cpu")] * len(plain)
    written = load_file(str(tmp_path / "from-gpu" / "model.safetensors"))
    for name, tensor in plain.items():
        assert type(written[name]) is torch.Tensor
        assert written[name].device.type == "cpu"
        assert torch.equal(written[name], tensor)


def test_gpu_model_loads_on_cpu(model_folder, table):
    estimator, folder = model_folder
    # A model file from a GPU run differs only in the device parameter it records.
    _edit_config(folder, lambda c: c["params"].update(device="cuda"))
    loaded = aekit.load(folder)
    assert loaded.device == "cuda"
    assert loaded.device_ == torch.device("cpu")
    assert {p.device.type for p in loaded.model_.parameters()} == {"cpu"}
    np.testing.assert_array_equal(loaded.reconstruction_error(table), estimator.reconstruction_error(table))
