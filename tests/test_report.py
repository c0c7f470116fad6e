import shutil

import numpy as np
import pytest
from sklearn.datasets import load_digits

import aekit
from aekit import AutoEncoder, ConfigError, plot
from aekit.reports import write_report
from aekit.training import Callback
from conftest import small_params


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.images[:300, None], data.target[:300]  # (300, 1, 8, 8) images, values 0-16


@pytest.fixture(scope="module")
def image_model(digits):
    images, _ = digits
    return AutoEncoder(latent_dim=4, hidden_dims=(32,), max_epochs=12, random_state=0, timeline=3).fit(images)


@pytest.fixture(scope="module")
def table_model(digits):
    images, _ = digits
    return AutoEncoder(latent_dim=2, hidden_dims=(16,), max_epochs=10, random_state=0, timeline=2).fit(
        images.reshape(300, -1)
    )


def test_loss_curve_data_equals_history(image_model):
    figure = plot.loss_curves(image_model)
    lines = {line.get_label(): line for line in figure.axes[0].lines}
    history = image_model.history_
    np.testing.assert_array_equal(lines["training loss"].get_ydata(), history.train_loss)
    np.testing.assert_array_equal(lines["validation loss"].get_ydata(), history.val_loss)
    np.testing.assert_array_equal(lines["training loss"].get_xdata(), np.arange(1, history.n_epochs + 1))
    assert f"best epoch ({history.best_epoch})" in lines


def test_loss_curves_add_panel_per_extra_series(image_model):
    image_model.history_.extra["kl_divergence"] = list(np.linspace(5, 1, image_model.history_.n_epochs))
    try:
        figure = plot.loss_curves(image_model)
    finally:
        del image_model.history_.extra["kl_divergence"]
    assert len(figure.axes) == 2
    np.testing.assert_allclose(figure.axes[1].lines[0].get_ydata()[[0, -1]], [5, 1])


def test_reconstruction_grid_has_requested_tiles(image_model, digits):
    images, _ = digits
    figure = plot.reconstructions(image_model, images, n=5)
    assert len(figure.axes) == 10
    shown = figure.axes[0].images[0].get_array()
    np.testing.assert_array_equal(shown, images[0, 0])
    np.testing.assert_allclose(figure.axes[5].images[0].get_array(), image_model.reconstruct(images[:1])[0, 0], rtol=1e-5)


def test_reconstruction_grid_rejects_tables(table_model, digits):
    images, _ = digits
    with pytest.raises(ValueError, match="use plot.feature_errors for tables"):
        plot.reconstructions(table_model, images.reshape(300, -1))


def test_latent_space_draws_two_unit_code_directly(table_model, digits):
    images, labels = digits
    figure = plot.latent_space(table_model, images.reshape(300, -1), labels)
    codes = table_model.transform(images.reshape(300, -1))
    collections = figure.axes[0].collections
    assert len(collections) == 10  # one per digit label
    first = collections[0].get_offsets()
    np.testing.assert_allclose(first, codes[labels == 0])
    assert "no projection" in figure.axes[0].get_title()


def test_latent_space_projects_wider_codes(image_model, digits):
    images, _ = digits
    figure = plot.latent_space(image_model, images)
    assert "projected by PCA" in figure.axes[0].get_title()
    assert figure.axes[0].collections[0].get_offsets().shape == (300, 2)


def test_error_histogram_counts_every_sample(image_model, digits):
    images, _ = digits
    figure = plot.error_histogram(image_model, images, bins=20)
    heights = [patch.get_height() for patch in figure.axes[0].patches]
    assert len(heights) == 20
    assert sum(heights) == 300


def test_error_histogram_marks_threshold(image_model, digits):
    images, _ = digits
    image_model.threshold_ = 0.05
    try:
        figure = plot.error_histogram(image_model, images)
    finally:
        del image_model.threshold_
    assert figure.axes[0].lines[0].get_xdata()[0] == 0.05


def test_feature_errors_sorted_largest_first(table_model, digits):
    images, _ = digits
    figure = plot.feature_errors(table_model, images.reshape(300, -1), top=5)
    widths = [patch.get_width() for patch in figure.axes[0].patches]
    assert len(widths) == 5
    assert widths == sorted(widths, reverse=True)
    assert widths[0] == pytest.approx(plot.per_feature_errors(table_model, images.reshape(300, -1)).max())


def test_network_drawing_lists_every_layer(image_model):
    figure = plot.network(image_model)
    labels = [text.get_text() for text in figure.axes[0].texts]
    assert "input\n64 units" in labels
    assert "latent code\n4 units" in labels
    assert "output\n64 units" in labels
    assert "2,048\nweights" in labels  # 64 inputs x 32 units
    assert "compression ratio 16.0" in figure.axes[0].get_title()


def test_weight_histograms_one_per_weight_matrix(image_model):
    figure = plot.weight_histograms(image_model)
    titled = [axis for axis in figure.axes if axis.get_title()]
    assert [axis.get_title() for axis in titled] == [
        "encoder.0 (2,048)", "encoder.3 (128)", "decoder.0 (128)", "decoder.3 (2,048)"
    ]


def test_timeline_records_powers_of_two_and_end(image_model):
    record = image_model.timeline_
    final = image_model.history_.best_epoch
    expected = sorted({1, 2, 4, 8, final})
    assert record["epochs"].tolist() == expected
    assert record["inputs"].shape == (3, 1, 8, 8)
    assert record["reconstructions"].shape == (len(record["epochs"]), 3, 1, 8, 8)
    figure = plot.timeline(image_model)
    assert len(figure.axes) == 3 * (len(record["epochs"]) + 1)


def test_timeline_last_record_is_final_model(image_model):
    record = image_model.timeline_
    np.testing.assert_allclose(record["reconstructions"][-1], image_model.reconstruct(record["inputs"]), atol=1e-5)


def test_timeline_leaves_results_unchanged(digits):
    images, _ = digits
    with_timeline = AutoEncoder(**small_params(timeline=4)).fit(images)
    without = AutoEncoder(**small_params()).fit(images)
    np.testing.assert_array_equal(with_timeline.transform(images), without.transform(images))
    assert without.timeline_ is None


def test_timeline_survives_save_and_load(image_model, tmp_path):
    image_model.save(tmp_path / "m")
    loaded = aekit.load(tmp_path / "m")
    for key in ("epochs", "inputs", "reconstructions"):
        np.testing.assert_array_equal(loaded.timeline_[key], image_model.timeline_[key])


def test_timeline_plot_without_record_explains(digits):
    images, _ = digits
    model = AutoEncoder(**small_params(max_epochs=2)).fit(images)
    with pytest.raises(ValueError, match="fit it with timeline=8"):
        plot.timeline(model)


def test_user_callback_sees_every_epoch(digits):
    images, _ = digits
    seen = []

    class Recorder(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            seen.append((epoch, logs["train_loss"]))

    model = AutoEncoder(**small_params(early_stopping=False, max_epochs=4, callbacks=[Recorder()])).fit(images)
    assert [epoch for epoch, _ in seen] == [1, 2, 3, 4]
    assert [loss for _, loss in seen] == model.history_.train_loss


def test_invalid_callback_is_rejected(digits):
    images, _ = digits
    with pytest.raises(ConfigError, match="callbacks must be aekit.training.Callback instances, got str"):
        AutoEncoder(**small_params(callbacks=["tensorboard"])).fit(images)


def test_tensorboard_logs_match_history(digits, tmp_path):
    pytest.importorskip("tensorboard", reason="the optional tensorboard package is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from aekit.training import TensorBoardLogger

    images, _ = digits
    model = AutoEncoder(**small_params(
        max_epochs=5, early_stopping=False, callbacks=[TensorBoardLogger(tmp_path / "tb", image_shape=(1, 8, 8), n_images=4)]
    )).fit(images)
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0}).Reload()
    assert [e.value for e in events.Scalars("loss/train")] == pytest.approx(model.history_.train_loss, rel=1e-6)
    assert [e.step for e in events.Scalars("loss/validation")] == [1, 2, 3, 4, 5]
    assert len(events.Scalars("learning_rate")) == 5
    assert [e.step for e in events.Images("reconstructions")] == [1, 2, 4, 5]
    assert len(events.Images("inputs")) == 1


def test_report_files_for_image_and_table(image_model, table_model, digits, tmp_path):
    images, labels = digits
    image_html = write_report(image_model, tmp_path / "img", images, labels=labels, data_description="digits")
    table_html = write_report(table_model, tmp_path / "tab", images.reshape(300, -1))
    image_files = sorted(p.name for p in (tmp_path / "img").iterdir())
    assert image_files == [
        "error_histogram.png", "latent_space.png", "loss_curves.png", "network.png",
        "reconstructions.png", "report.html", "timeline.png", "weight_histograms.png",
    ]
    assert (tmp_path / "tab" / "feature_errors.png").is_file()
    assert not (tmp_path / "tab" / "reconstructions.png").exists()
    text = table_html.read_text()
    assert "Worst-reconstructed rows" in text
    assert "projected on their first two principal components" not in text  # a 2-unit code is drawn as it is
    assert image_html.read_text().count("<img ") == 7


def test_report_without_data_keeps_model_sections(image_model, tmp_path):
    html = write_report(image_model, tmp_path / "r").read_text()
    assert "Learning curves" in html
    assert "Training timeline" in html
    assert "Latent space" not in html
    assert "rows shown in this report</td><td>none" in html


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.parametrize("kind", ["image", "table"])
def test_report_renders_offline_in_chromium(kind, image_model, table_model, digits, tmp_path):
    if chromium_path() is None:
        pytest.skip("Chromium is not installed; .ci/run installs Debian's chromium package")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[test]')")
    images, labels = digits
    if kind == "image":
        path = write_report(image_model, tmp_path / "r", images, labels=labels)
    else:
        path = write_report(table_model, tmp_path / "r", images.reshape(300, -1))

    requests = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        widths = page.evaluate("Array.from(document.images).map(image => image.naturalWidth)")
        page.screenshot(path=str(tmp_path / "screenshot.png"), full_page=True)
        browser.close()

    assert len(widths) == 7
    assert all(width > 0 for width in widths), widths
    assert requests == [path.as_uri()]
    assert (tmp_path / "screenshot.png").stat().st_size > 10_000


def run_cli(capsys, *args):
    from aekit.cli.main import main

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as done:
        code = done.code
    return code, *capsys.readouterr()


def test_cli_train_writes_report_by_default(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "train", "--latent-dim", 4, "--epochs", 3, "--seed", 0, "--out", tmp_path / "m")
    assert code == 0
    assert (tmp_path / "m" / "report" / "report.html").is_file()
    assert (tmp_path / "m" / "report" / "reconstructions.png").is_file()
    assert "report written to" in out
    assert aekit.load(tmp_path / "m").timeline_["inputs"].shape == (8, 1, 8, 8)


def test_cli_no_report_skips_it(capsys, tmp_path):
    code, _, _ = run_cli(capsys, "train", "--epochs", 2, "--no-report", "--out", tmp_path / "m")
    assert code == 0
    assert not (tmp_path / "m" / "report").exists()
    assert aekit.load(tmp_path / "m").timeline_ is None


def test_cli_report_command_with_and_without_data(capsys, tmp_path, digits):
    images, _ = digits
    np.save(tmp_path / "digits.npy", images)
    code, _, _ = run_cli(capsys, "train", tmp_path / "digits.npy", "--epochs", 2, "--no-report", "--out", tmp_path / "m")
    assert code == 0
    code, out, _ = run_cli(capsys, "report", tmp_path / "m", tmp_path / "digits.npy", "--out", tmp_path / "full")
    assert code == 0
    assert (tmp_path / "full" / "latent_space.png").is_file()
    code, _, _ = run_cli(capsys, "report", tmp_path / "m", "--out", tmp_path / "bare")
    assert code == 0
    assert not (tmp_path / "bare" / "latent_space.png").exists()
    assert (tmp_path / "bare" / "network.png").is_file()


def test_cli_report_missing_model_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "report", tmp_path / "nothing", "--out", tmp_path / "r")
    assert code == 1
    assert err.strip().splitlines() == [f"aekit: error: model folder '{tmp_path / 'nothing'}' not found; pass the folder written by 'aekit train' or save()."]


def test_cli_tensorboard_option_writes_events(capsys, tmp_path):
    pytest.importorskip("tensorboard", reason="the optional tensorboard package is not installed")
    code, _, _ = run_cli(capsys, "train", "--epochs", 2, "--no-report", "--tensorboard", tmp_path / "tb", "--out", tmp_path / "m")
    assert code == 0
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_detector_report_marks_its_threshold(digits, tmp_path):
    images, _ = digits
    table = images.reshape(300, -1)
    detector = aekit.AnomalyDetector(AutoEncoder(**small_params(max_epochs=3)), contamination=0.05, random_state=0)
    detector.fit(table)
    html = write_report(detector, tmp_path / "r", table).read_text()
    assert "aekit report: AnomalyDetector (dense)" in html
    assert "(contamination)" in html
    figure = plot.error_histogram(detector, table)
    assert figure.axes[0].lines[0].get_xdata()[0] == detector.threshold_


def test_network_drawing_of_conv_and_vae(digits):
    import warnings

    images, _ = digits
    conv = AutoEncoder(latent_dim=4, architecture="conv", max_epochs=1, random_state=0).fit(images)
    labels = [text.get_text() for text in plot.network(conv).axes[0].texts]
    assert "encoder.0\n32 channels" in labels
    assert "latent code\n4 units" in labels
    assert "output\n1 channels" in labels

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", aekit.AekitWarning)
        vae = aekit.VariationalAutoEncoder(latent_dim=3, max_epochs=1, random_state=0).fit(images)
    labels = [text.get_text() for text in plot.network(vae).axes[0].texts]
    assert "latent code\n3 units" in labels
    assert not any(label.startswith("logvar_head") for label in labels)


def test_vae_history_records_kl_per_epoch(digits):
    import warnings

    images, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", aekit.AekitWarning)
        vae = aekit.VariationalAutoEncoder(latent_dim=3, max_epochs=4, early_stopping=False, random_state=0).fit(images)
    extra = vae.history_.extra
    assert sorted(extra) == ["kl_divergence", "reconstruction_loss"]
    assert len(extra["kl_divergence"]) == 4
    assert all(value >= 0 for value in extra["kl_divergence"])
    figure = plot.loss_curves(vae)
    titles = [axis.get_title() for axis in figure.axes]
    assert "Kl divergence" in titles
    np.testing.assert_allclose(figure.axes[titles.index("Kl divergence")].lines[0].get_ydata(), extra["kl_divergence"])
