import json

import numpy as np
import pandas as pd
import pytest

import aekit
from test_cli import run, table_csv  # noqa: F401  (shared fixtures)

SMALL = ("--latent-dim", 2, "--hidden-dims", "16", "--epochs", 20, "--batch-size", 32, "--seed", 0)


@pytest.fixture
def detector_dir(run, tmp_path, table_csv):
    out = tmp_path / "detector"
    code, stdout, err = run("train", table_csv, "--detector", "--fpr", 0.1, *SMALL, "--out", out)
    assert code == 0, err
    assert "model saved to" in stdout
    return out


def test_train_detector_saves_threshold(detector_dir):
    detector = aekit.load(detector_dir)
    assert isinstance(detector, aekit.AnomalyDetector)
    assert detector.threshold_method_ == "fpr"
    assert detector.fpr == 0.1
    assert detector.estimator_.latent_dim_ == 2
    assert detector.estimator_.max_epochs == 20
    # Options not given take the detector defaults, not the plain autoencoder's.
    assert detector.estimator_.dropout == 0.2
    assert detector.estimator_.validation_fraction == 0.0
    metrics = json.loads((detector_dir / "metrics.json").read_text())
    assert metrics["detector"]["threshold_method"] == "fpr"
    assert metrics["detector"]["n_calibration"] == 40
    assert metrics["detector"]["threshold"] == pytest.approx(detector.threshold_)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_detect_writes_scores_labels_and_top_features(run, detector_dir, table_csv, tmp_path, suffix):
    out = tmp_path / f"detected{suffix}"
    code, stdout, err = run("detect", detector_dir, table_csv, "--out", out, "--top-features", 2)
    assert code == 0, err
    assert "of 200 rows as outliers" in stdout

    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(frame.columns) == [
        "score", "label", "p_value",
        "feature_1", "error_share_1", "actual_1", "expected_1",
        "feature_2", "error_share_2", "actual_2", "expected_2",
    ]
    detector = aekit.load(detector_dir)
    X = pd.read_csv(table_csv)
    np.testing.assert_allclose(frame["score"], detector.reconstruction_error(X), rtol=1e-6)
    np.testing.assert_array_equal(frame["label"], (detector.predict(X) == -1).astype(int))
    np.testing.assert_allclose(frame["p_value"], detector.p_values(X))
    explained = detector.explain(X, top_k=1)
    assert list(frame["feature_1"]) == list(explained["feature"])
    assert set(frame["feature_1"]) <= {f"f{i}" for i in range(6)}


def test_detect_without_top_features(run, detector_dir, table_csv, tmp_path):
    out = tmp_path / "detected.csv"
    code, _, _ = run("detect", detector_dir, table_csv, "--out", out, "--top-features", 0)
    assert code == 0
    assert list(pd.read_csv(out).columns) == ["score", "label", "p_value"]


def test_contamination_detector_round_trip(run, tmp_path, table_csv):
    out = tmp_path / "detector"
    code, _, err = run("train", table_csv, "--detector", "--contamination", 0.05, *SMALL, "--out", out)
    assert code == 0, err
    code, stdout, _ = run("detect", out, table_csv, "--out", tmp_path / "d.csv")
    assert code == 0
    assert "flagged 10 of 200 rows" in stdout
    assert "p_value" not in pd.read_csv(tmp_path / "d.csv").columns
    code, stdout, _ = run("info", out)
    assert code == 0
    assert "anomaly threshold: reconstruction error" in stdout


def test_cli_clean_rows_disable_dropout(run, tmp_path, table_csv):
    out = tmp_path / "detector"
    code, _, err = run("train", table_csv, "--detector", "--contamination", 0, *SMALL, "--out", out)
    assert code == 0, err
    detector = aekit.load(out)
    assert detector.estimator_.dropout == 0.0
    code, stdout, _ = run("detect", out, table_csv, "--out", tmp_path / "d.csv")
    assert code == 0
    assert "flagged 0 of 200 rows" in stdout


def test_cli_n_estimators(run, tmp_path, table_csv):
    from aekit.estimators.anomaly import DEFAULT_N_ESTIMATORS

    out = tmp_path / "detector"
    code, _, err = run("train", table_csv, "--detector", "--n-estimators", 2, *SMALL, "--out", out)
    assert code == 0, err
    detector = aekit.load(out)
    assert detector.n_estimators == 2
    assert [member.max_epochs for member in detector.estimators_] == [20, 20]
    assert len({member.seed_ for member in detector.estimators_}) == 2
    # Without --n-estimators the CLI trains as many networks as the library's default.
    code, stdout, err = run("train", "--help")
    assert "--n-estimators INTEGER RANGE" in stdout
    assert f"[default: {DEFAULT_N_ESTIMATORS};" in stdout


def test_score_and_encode_accept_a_detector(run, detector_dir, table_csv, tmp_path):
    code, _, _ = run("score", detector_dir, table_csv, "--out", tmp_path / "s.csv")
    assert code == 0
    code, _, _ = run("encode", detector_dir, table_csv, "--out", tmp_path / "z.csv")
    assert code == 0
    assert pd.read_csv(tmp_path / "z.csv").shape == (200, 2)


@pytest.mark.parametrize(
    "args, message",
    [
        (("--fpr", 0.1), "aekit: error: --fpr applies only to an anomaly detector; add --detector."),
        (("--n-estimators", 2), "aekit: error: --n-estimators applies only to an anomaly detector; add --detector."),
        (("--detector", "--n-estimators", 0), "aekit: error: Invalid value for '--n-estimators'"),
        (("--detector", "--fpr", 0.1, "--threshold", 1.0), "aekit: error: --fpr and --threshold set competing thresholds"),
        (("--detector", "--contamination", 0.8), "aekit: error: Invalid value for '--contamination'"),
        (("--detector", "--fpr", 0.1, "--calibration-fraction", 0), "aekit: error: fpr needs held-out calibration rows"),
    ],
)
def test_train_detector_errors(run, table_csv, tmp_path, args, message):
    code, _, err = run("train", table_csv, *args, *SMALL, "--out", tmp_path / "m")
    assert code != 0
    assert err.startswith(message)
    assert len(err.strip().splitlines()) == 1


def test_detect_errors(run, detector_dir, table_csv, tmp_path):
    code, _, err = run("detect", detector_dir, table_csv, "--out", tmp_path / "d.npy")
    assert code == 2
    assert err.strip() == (
        f"aekit: error: output file '{tmp_path / 'd.npy'}' is .npy, which cannot hold feature names; "
        "use .csv or .parquet."
    )

    plain = tmp_path / "plain"
    assert run("train", table_csv, *SMALL, "--out", plain)[0] == 0
    code, _, err = run("detect", plain, table_csv, "--out", tmp_path / "d.csv")
    assert code == 2
    assert err.strip() == (
        f"aekit: error: model '{plain}' is a plain AutoEncoder, not an anomaly detector; train one with "
        "'aekit train --detector'."
    )

    pd.DataFrame(np.zeros((3, 4)), columns=list("abcd")).to_csv(tmp_path / "narrow.csv", index=False)
    code, _, err = run("detect", detector_dir, tmp_path / "narrow.csv", "--out", tmp_path / "d.csv")
    assert code == 1
    assert "missing ['f0', 'f1', 'f2', 'f3', 'f4', 'f5']" in err
