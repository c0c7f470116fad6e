import json

import numpy as np
import pandas as pd
import pytest

import aekit
from aekit import AutoEncoder, ExportError
from aekit import export as export_module
from aekit.cli.main import main
from aekit.model_card import render_model_card
from conftest import small_params

onnxruntime = pytest.importorskip("onnxruntime", reason="ONNX export tests need pip install 'aekit[onnx]'")
pytest.importorskip("onnxscript", reason="ONNX export tests need pip install 'aekit[onnx]'")


def run_onnx(path, x):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})))


@pytest.fixture(scope="module")
def table_model():
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(300, 2)) @ rng.normal(size=(2, 5)) * [1, 10, 100, 0.1, 5] + [0, 50, -3, 7, 1000]).astype(np.float32)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d", "e"])
    model = AutoEncoder(**small_params(max_epochs=10)).fit(frame.iloc[:200])
    return model, frame


def test_dense_export_matches_pytorch_on_held_out_rows(table_model, tmp_path):
    model, frame = table_model
    result = model.export_onnx(tmp_path / "m.onnx")
    assert result.passed
    assert result.opset == export_module.ONNX_OPSET
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # weights inside, no external data file
    held_out = frame.iloc[200:].to_numpy()
    outputs = run_onnx(tmp_path / "m.onnx", held_out)
    assert list(outputs) == ["latent", "reconstruction", "reconstruction_error"]
    np.testing.assert_allclose(outputs["latent"], model.transform(frame.iloc[200:]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outputs["reconstruction"], model.reconstruct(frame.iloc[200:]), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(
        outputs["reconstruction_error"], model.reconstruction_error(frame.iloc[200:]), rtol=1e-4, atol=1e-6
    )


def test_batch_dimension_is_dynamic(table_model, tmp_path):
    model, frame = table_model
    model.export_onnx(tmp_path / "m.onnx")
    for n_rows in (1, 7, 100):
        outputs = run_onnx(tmp_path / "m.onnx", frame.iloc[:n_rows].to_numpy())
        assert outputs["latent"].shape == (n_rows, 2)
        assert outputs["reconstruction"].shape == (n_rows, 5)


def test_image_model_takes_nchw(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, size=(80, 1, 6, 5)).astype(np.float32)
    model = AutoEncoder(**small_params(latent_dim=4, hidden_dims=(16,))).fit(images)
    model.export_onnx(tmp_path / "img.onnx")
    outputs = run_onnx(tmp_path / "img.onnx", images[:10])
    assert outputs["reconstruction"].shape == (10, 1, 6, 5)
    np.testing.assert_allclose(outputs["reconstruction"], model.reconstruct(images[:10]), rtol=1e-4, atol=1e-3)


def test_threshold_becomes_is_anomaly(table_model, tmp_path):
    model, frame = table_model
    errors = model.reconstruction_error(frame)
    model.threshold_ = float(np.median(errors))
    try:
        model.export_onnx(tmp_path / "d.onnx")
    finally:
        del model.threshold_
    outputs = run_onnx(tmp_path / "d.onnx", frame.to_numpy())
    assert outputs["is_anomaly"].dtype == bool
    np.testing.assert_array_equal(outputs["is_anomaly"], outputs["reconstruction_error"] > np.median(errors))
    assert outputs["is_anomaly"].sum() == 150


def test_mismatch_writes_nothing_unless_allowed(table_model, tmp_path, monkeypatch):
    model, _ = table_model
    original = export_module._torch_export

    def export_a_different_graph(graph, rows, path, opset):
        graph.offset += 1.0  # the exported constants now differ from the model's
        try:
            original(graph, rows, path, opset)
        finally:
            graph.offset -= 1.0

    monkeypatch.setattr(export_module, "_torch_export", export_a_different_graph)
    with pytest.raises(ExportError, match="does not match the PyTorch model: parity check FAILED.*nothing was written"):
        model.export_onnx(tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()
    assert not list(tmp_path.iterdir())

    result = model.export_onnx(tmp_path / "bad.onnx", strict=False)
    assert not result.passed
    assert (tmp_path / "bad.onnx").is_file()
    assert result.max_abs_diff["reconstruction"] > 0.1


def test_missing_packages_are_named(table_model, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'", name="onnxruntime")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ExportError, match=r"onnxruntime is missing.*pip install 'aekit\[onnx\]'"):
        table_model[0].export_onnx(tmp_path / "m.onnx")


def test_blocked_model_says_why(table_model, tmp_path, monkeypatch):
    model, _ = table_model
    monkeypatch.setattr(type(model), "_export_blockers", lambda self: ["categorical column 'city' needs embeddings"])
    with pytest.raises(ExportError, match="cannot be exported to ONNX: categorical column 'city' needs embeddings"):
        model.export_onnx(tmp_path / "m.onnx")


def test_export_recorded_in_saved_model(table_model, tmp_path):
    model, _ = table_model
    fitted = AutoEncoder(**model.get_params()).fit(table_model[1].iloc[:200])
    fitted.export_onnx(tmp_path / "m.onnx")
    fitted.save(tmp_path / "folder")
    loaded = aekit.load(tmp_path / "folder")
    assert loaded.exports_[0]["passed"] is True
    np.testing.assert_array_equal(loaded.reference_rows_, fitted.reference_rows_)
    card = (tmp_path / "folder" / "README.md").read_text()
    assert "## Exports" in card
    assert f"`{tmp_path / 'm.onnx'}` | {export_module.ONNX_OPSET} | 64 | rtol 0.0001, atol 1e-05" in card


def test_model_card_describes_the_model(table_model, tmp_path):
    model, _ = table_model
    model.save(tmp_path / "card")
    config = json.loads((tmp_path / "card" / "config.json").read_text())
    card = (tmp_path / "card" / "README.md").read_text()
    assert card == render_model_card(config, folder_name="card")
    assert "- rows: 200 (160 for training, 40 for validation)" in card
    assert f"| e | {model.data_min_[4]:.6g} | {model.data_max_[4]:.6g} |" in card
    assert "- encoder widths: 5 -> 16 -> 2; the decoder mirrors them" in card
    n_parameters = sum(p.numel() for p in model.model_.parameters())
    assert f"- parameters: {n_parameters:,}" in card
    assert f"| validation | {model.metrics_['val_mse']:.5g} | {model.metrics_['pca_val_mse']:.5g} |" in card
    assert f"- aekit: {aekit.__version__}" in card
    assert 'aekit.load("card")' in card
    assert "onnxruntime.InferenceSession" in card


def run_cli(capsys, *args):
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as done:
        code = done.code
    return code, *capsys.readouterr()


def test_cli_export_updates_model_card(capsys, tmp_path):
    code, _, _ = run_cli(capsys, "train", "--epochs", 3, "--no-report", "--seed", 0, "--out", tmp_path / "m")
    assert code == 0
    code, out, _ = run_cli(capsys, "export", tmp_path / "m", "--format", "onnx", "--out", tmp_path / "m.onnx")
    assert code == 0
    assert "parity check passed on 64 rows" in out
    outputs = run_onnx(tmp_path / "m.onnx", aekit.data.read_data(None).X[:5].astype(np.float32))
    assert outputs["reconstruction"].shape == (5, 1, 8, 8)
    assert "## Exports" in (tmp_path / "m" / "README.md").read_text()


def test_cli_export_unknown_format_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "export", tmp_path / "m", "--format", "tflite", "--out", tmp_path / "m.x")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "'tflite' is not 'onnx'" in err


def test_detector_export_gives_identical_labels(table_model, tmp_path):
    _, frame = table_model
    detector = aekit.AnomalyDetector(AutoEncoder(**small_params(max_epochs=10)), contamination=0.1, random_state=0)
    detector.fit(frame.iloc[:200])
    result = detector.export_onnx(tmp_path / "det.onnx")
    assert result.passed
    assert result.label_mismatches == 0

    held_out = frame.iloc[200:]
    outputs = run_onnx(tmp_path / "det.onnx", held_out.to_numpy())
    np.testing.assert_allclose(outputs["reconstruction_error"], detector.reconstruction_error(held_out), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(outputs["is_anomaly"], detector.predict(held_out) == -1)


def test_detector_model_card_explains_threshold(table_model, tmp_path):
    _, frame = table_model
    detector = aekit.AnomalyDetector(AutoEncoder(**small_params()), fpr=0.1, random_state=0).fit(frame.iloc[:200])
    detector.save(tmp_path / "det")
    card = (tmp_path / "det" / "README.md").read_text()
    assert card.startswith("# det: aekit AnomalyDetector (dense autoencoder)")
    assert f"- value: {detector.threshold_:.5g}" in card
    assert "target false-positive rate fpr=0.1, from conformal p-values on 40 held-out calibration rows" in card


@pytest.fixture(scope="module")
def digit_images():
    return aekit.data.read_data(None).X.astype(np.float32)  # (1797, 1, 8, 8)


@pytest.mark.parametrize("architecture", ["dense", "conv"])
def test_variational_export_uses_the_posterior_mean(digit_images, architecture, tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", aekit.AekitWarning)  # a short run may warn of posterior collapse
        model = aekit.VariationalAutoEncoder(4, architecture=architecture, max_epochs=3, random_state=0)
        model.fit(digit_images[:1200])
    assert model.export_onnx(tmp_path / "vae.onnx").passed

    held_out = digit_images[1200:1400]
    outputs = run_onnx(tmp_path / "vae.onnx", held_out)
    np.testing.assert_allclose(outputs["latent"], model.transform(held_out), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outputs["reconstruction"], model.reconstruct(held_out), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(outputs["reconstruction_error"], model.reconstruction_error(held_out), rtol=1e-4, atol=1e-6)


def test_conv_export_keeps_image_shape(digit_images, tmp_path):
    model = AutoEncoder(6, architecture="conv", max_epochs=2, random_state=0).fit(digit_images[:1200])
    assert model.export_onnx(tmp_path / "conv.onnx").passed
    held_out = digit_images[1200:1300]
    outputs = run_onnx(tmp_path / "conv.onnx", held_out)
    assert outputs["reconstruction"].shape == (100, 1, 8, 8)
    np.testing.assert_allclose(outputs["reconstruction"], model.reconstruct(held_out), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(outputs["latent"], model.transform(held_out), rtol=1e-4, atol=1e-5)
