import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

import aekit
from aekit import AnomalyDetector, AutoEncoder, ConfigError
from aekit._seed import derive_seed
from aekit.estimators.anomaly import detector_defaults
from aekit.scoring import conformal_p_values, conformal_threshold, contamination_threshold
from conftest import small_params


def correlated_rows(n, seed):
    """Rows of 6 features driven by 2 hidden factors: the normal data."""
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(100).normal(size=(2, 6))
    return (rng.normal(size=(n, 2)) @ mixing + 0.05 * rng.normal(size=(n, 6))).astype(np.float32)


def small_detector(**params):
    return AnomalyDetector(AutoEncoder(**small_params(max_epochs=30)), random_state=0, **params)


@pytest.fixture(scope="module")
def inliers():
    return correlated_rows(400, seed=1)


@pytest.fixture(scope="module")
def fitted(inliers):
    return small_detector().fit(inliers)


# --- scikit-learn outlier conventions ---------------------------------------------------


def test_outlier_conventions(fitted, inliers):
    errors = fitted.reconstruction_error(inliers)
    np.testing.assert_array_equal(fitted.score_samples(inliers), -errors)
    # Scores are float64, as scikit-learn's outlier checks require.
    assert fitted.score_samples(inliers).dtype == np.float64
    np.testing.assert_array_equal(fitted.decision_function(inliers), -errors.astype(np.float64) - fitted.offset_)
    assert fitted.offset_ == -fitted.threshold_
    labels = fitted.predict(inliers)
    assert set(np.unique(labels)) == {-1, 1}
    np.testing.assert_array_equal(labels == -1, fitted.decision_function(inliers) < 0)
    np.testing.assert_array_equal(labels == -1, errors > fitted.threshold_)


def test_fit_predict_matches_predict(inliers, fitted):
    labels = small_detector().fit_predict(inliers)
    np.testing.assert_array_equal(labels, fitted.predict(inliers))


def test_detects_planted_outliers_synthetic():
    X = correlated_rows(500, seed=2)
    rng = np.random.default_rng(3)
    outliers = rng.uniform(X.min(axis=0), X.max(axis=0), size=(25, 6)).astype(np.float32)
    data = np.vstack([X, outliers])
    y = np.r_[np.zeros(len(X)), np.ones(len(outliers))]

    detector = AnomalyDetector(random_state=0).fit(data)
    assert roc_auc_score(y, detector.training_errors_) >= 0.95
    assert roc_auc_score(y, -detector.score_samples(data)) >= 0.95


def test_default_estimator_uses_detector_defaults(inliers):
    detector = AnomalyDetector(random_state=0).fit(inliers[:200])
    assert len(detector.estimators_) == 4
    assert detector.estimator_ is detector.estimators_[0]
    for inner in detector.estimators_:
        assert isinstance(inner, AutoEncoder)
        assert inner.batch_size == 64
        assert inner.max_epochs == 125  # 500 steps of 4 batches each
        assert inner.dropout == 0.2
        assert inner.validation_fraction == 0.0
    seeds = [inner.random_state for inner in detector.estimators_]
    assert seeds == [0, derive_seed(0, 1), derive_seed(0, 2), derive_seed(0, 3)]
    assert detector.estimator is None
    # Epochs are capped at 200 for tiny tables.
    assert detector_defaults(10)["max_epochs"] == 200
    assert detector_defaults(2000, steps=1500)["max_epochs"] == 47


def test_score_averages_network_scores(fitted, inliers):
    # Each network scores a row by its mean squared error per feature, in its scaled
    # units, divided by its own median error of that feature over the training rows.
    scores = []
    for member, scales in zip(fitted.estimators_, fitted.feature_error_scales_):
        x_scaled = member.scaler_.transform(inliers)
        recon_scaled = member.scaler_.transform(member.reconstruct(inliers))
        errors = np.square(recon_scaled.astype(np.float64) - x_scaled)
        np.testing.assert_allclose(np.median(errors, axis=0), scales, rtol=1e-6)
        scores.append((errors / scales).mean(axis=1))
    np.testing.assert_allclose(fitted.reconstruction_error(inliers), np.mean(scores, axis=0), rtol=1e-5)
    # The networks differ, and averaging them changes the ranking of some rows.
    first, second = (member.model_.state_dict() for member in fitted.estimators_[:2])
    assert not all(torch.equal(first[name], second[name]) for name in first)
    assert not np.array_equal(np.argsort(scores[0]), np.argsort(np.mean(scores, axis=0)))


def test_single_network_uses_own_error(inliers):
    detector = small_detector(n_estimators=1, feature_weighting="none").fit(inliers)
    assert len(detector.estimators_) == 1
    np.testing.assert_array_equal(detector.reconstruction_error(inliers), detector.estimator_.reconstruction_error(inliers))


@pytest.mark.parametrize("random_state", [7, None, np.random.RandomState(3)], ids=["int", "none", "RandomState"])
def test_given_estimator_seeds_each_network(inliers, random_state):
    inner = AutoEncoder(**small_params(max_epochs=2, random_state=random_state))
    detector = AnomalyDetector(inner, random_state=5).fit(inliers)
    seeds = [member.random_state for member in detector.estimators_]
    if random_state is None:
        assert seeds == [None] * 4
    elif isinstance(random_state, int):
        assert seeds == [7, derive_seed(7, 1), derive_seed(7, 2), derive_seed(7, 3)]
    else:
        # Clones of one RandomState would share its stream, so the others use the detector's seed.
        assert seeds[1:] == [derive_seed(5, 1), derive_seed(5, 2), derive_seed(5, 3)]
    assert len({member.seed_ for member in detector.estimators_}) == 4


def test_given_estimator_is_cloned(inliers):
    inner = AutoEncoder(**small_params())
    detector = AnomalyDetector(inner, random_state=0).fit(inliers)
    assert not hasattr(inner, "model_")
    assert detector.estimator_ is not inner
    assert detector.estimator_.latent_dim_ == 2


def test_nested_params_and_clone(fitted):
    params = fitted.get_params(deep=True)
    assert params["estimator__latent_dim"] == 2
    copy = clone(fitted).set_params(estimator__latent_dim=3, contamination=0.2)
    assert copy.estimator.latent_dim == 3
    assert copy.contamination == 0.2
    assert not hasattr(copy, "estimator_")


# --- thresholds -------------------------------------------------------------------------


def test_contamination_zero_flags_no_training_row(inliers):
    detector = small_detector(contamination=0).fit(inliers)
    assert detector.threshold_method_ == "contamination"
    assert detector.threshold_ == pytest.approx(float(detector.training_errors_.max()))
    assert np.all(detector.predict(inliers) == 1)


def test_contamination_share_is_flagged(fitted, inliers):
    flagged = np.mean(fitted.predict(inliers) == -1)
    assert abs(flagged - 0.1) <= 1 / len(inliers)


def test_explicit_threshold(inliers):
    detector = small_detector(threshold=0.05).fit(inliers)
    assert detector.threshold_method_ == "threshold"
    assert detector.threshold_ == 0.05
    np.testing.assert_array_equal(detector.predict(inliers) == -1, detector.reconstruction_error(inliers) > 0.05)


def test_fpr_target_holds_on_new_inliers():
    train = correlated_rows(1500, seed=4)
    new = correlated_rows(3000, seed=5)
    detector = small_detector(fpr=0.1).fit(train)
    assert detector.threshold_method_ == "fpr"
    assert len(detector.calibration_errors_) == 300
    flagged = np.mean(detector.predict(new) == -1)
    # The conformal guarantee holds on average over calibration sets; one calibration
    # set of 300 rows moves the rate by about 0.017 (one standard deviation).
    assert 0.1 - 0.05 <= flagged <= 0.1 + 0.05
    p_values = detector.p_values(new)
    np.testing.assert_array_equal(p_values <= 0.1, detector.predict(new) == -1)
    assert np.mean(p_values <= 0.1) == flagged


def test_fpr_calibration_rows_are_not_trained_on():
    train = correlated_rows(200, seed=6)
    detector = small_detector(fpr=0.1).fit(train)
    assert detector.estimator_.metrics_["n_train"] + detector.estimator_.metrics_["n_val"] == 160


def test_set_threshold_without_retraining(inliers):
    detector = small_detector(calibration_fraction=0.25).fit(inliers)
    errors = detector.reconstruction_error(inliers)
    weights = {k: v.clone() for k, v in detector.estimator_.model_.state_dict().items()}

    detector.set_threshold(contamination=0.2)
    assert abs(np.mean(detector.predict(inliers) == -1) - 0.2) <= 1 / len(inliers)
    detector.set_threshold(fpr=0.05)
    assert detector.threshold_method_ == "fpr"
    assert (detector.fpr, detector.threshold, detector.contamination) == (0.05, None, 0.1)
    detector.set_threshold(threshold=1.5)
    assert detector.threshold_ == 1.5
    assert detector.offset_ == -1.5
    assert detector.get_params()["threshold"] == 1.5

    np.testing.assert_array_equal(detector.reconstruction_error(inliers), errors)
    for name, tensor in detector.estimator_.model_.state_dict().items():
        assert bool((tensor == weights[name]).all()), name


def test_set_threshold_errors(fitted):
    with pytest.raises(ConfigError, match="exactly one of contamination, fpr or threshold"):
        fitted.set_threshold(contamination=0.1, threshold=1.0)
    with pytest.raises(ConfigError, match="exactly one"):
        fitted.set_threshold()
    with pytest.raises(ConfigError, match="fitted without any; fit again with fpr set"):
        fitted.set_threshold(fpr=0.05)
    with pytest.raises(ConfigError, match="fitted without any"):
        fitted.p_values(np.zeros((1, 6)))


@pytest.mark.parametrize(
    "params, fragment",
    [
        (dict(fpr=0.1, threshold=1.0), "only one threshold rule"),
        (dict(contamination=0.7), r"contamination must be a number in \[0, 0.5\]"),
        (dict(fpr=1.5), r"fpr must be a number in \(0, 1\)"),
        (dict(threshold=float("nan")), "threshold must be a finite number"),
        (dict(fpr=0.1, calibration_fraction=0), "fpr needs held-out calibration rows"),
        (dict(calibration_fraction=1.2), "calibration_fraction must be 'auto' or a number"),
        (dict(feature_weighting="mean"), "feature_weighting must be one of"),
        (dict(n_estimators=0), "n_estimators must be a positive integer.*got 0"),
        (dict(n_estimators=2.5), "n_estimators must be a positive integer.*got 2.5"),
    ],
)
def test_invalid_parameters(inliers, params, fragment):
    with pytest.raises(ConfigError, match=fragment):
        small_detector(**params).fit(inliers)


def test_foreign_estimator_is_rejected(inliers):
    from sklearn.decomposition import PCA

    with pytest.raises(ConfigError, match="estimator must be an aekit autoencoder estimator"):
        AnomalyDetector(PCA()).fit(inliers)


def test_unreachable_fpr_warns_and_flags_nothing(inliers):
    with pytest.warns(aekit.AekitWarning, match="cannot be reached with 20 calibration rows"):
        detector = small_detector(fpr=0.01, calibration_fraction=0.05).fit(inliers)
    assert detector.threshold_ == np.inf
    assert np.all(detector.predict(inliers) == 1)


def test_conformal_threshold_matches_p_values():
    rng = np.random.default_rng(0)
    calibration = np.round(rng.normal(size=99), 1)  # rounded, so ties occur
    scores = np.round(rng.normal(size=500) * 1.5, 1)
    for fpr in (0.01, 0.05, 0.1, 0.37):
        threshold = conformal_threshold(calibration, fpr)
        np.testing.assert_array_equal(conformal_p_values(scores, calibration) <= fpr, scores > threshold)


def test_conformal_p_values_count_ties_and_the_row():
    calibration = np.array([1.0, 2.0, 2.0, 3.0])
    np.testing.assert_allclose(conformal_p_values(np.array([0.5, 2.0, 3.5]), calibration), [1.0, 0.8, 0.2])


def test_contamination_threshold_zero_is_the_maximum():
    scores = np.array([0.1, 0.5, 0.2])
    assert contamination_threshold(scores, 0.0) == 0.5
    assert contamination_threshold(np.arange(11.0), 0.1) == 9.0


# --- trustworthy scores -----------------------------------------------------------------


def test_training_scores_are_reproduced(fitted, inliers):
    np.testing.assert_array_equal(fitted.reconstruction_error(inliers), fitted.training_errors_)


def test_scores_do_not_depend_on_batch_or_other_rows(inliers):
    detector = AnomalyDetector(AutoEncoder(**small_params(dropout=0.3)), random_state=0).fit(inliers)
    together = detector.reconstruction_error(inliers)
    one_by_one = np.concatenate([detector.reconstruction_error(inliers[i : i + 1]) for i in range(50)])
    reversed_order = detector.reconstruction_error(inliers[::-1])[::-1]
    # Float32 matrix products round differently for different batch shapes.
    np.testing.assert_allclose(one_by_one, together[:50], rtol=1e-5)
    np.testing.assert_allclose(reversed_order, together, rtol=1e-5)
    np.testing.assert_array_equal(detector.reconstruction_error(inliers), together)
    assert not detector.estimator_.model_.training


def test_median_weighting_divides_feature_errors(inliers):
    weighted = small_detector().fit(inliers)
    plain = small_detector(feature_weighting="none").fit(inliers)
    assert plain.feature_error_scales_ is None
    members = np.mean([member.reconstruction_error(inliers) for member in plain.estimators_], axis=0)
    np.testing.assert_allclose(plain.reconstruction_error(inliers), members, rtol=1e-6)
    assert weighted.feature_error_scales_.shape == (4, 6)
    # Each network's weighted error of each feature has median about 1 on the training rows.
    for errors, scales in zip(weighted._member_errors(inliers), weighted.feature_error_scales_):
        np.testing.assert_allclose(np.median(errors / scales, axis=0), 1.0, rtol=1e-4)


# --- explanations -----------------------------------------------------------------------


@pytest.mark.parametrize("n_estimators", [1, 4])
def test_explain_ranks_the_planted_feature_first(inliers, n_estimators):
    # One small network, or the default detector's four networks.
    if n_estimators == 1:
        detector = small_detector(feature_weighting="none", n_estimators=1)
    else:
        detector = AnomalyDetector(feature_weighting="none", random_state=0)
    detector.fit(pd.DataFrame(inliers, columns=list("abcdef")))
    assert len(detector.estimators_) == n_estimators
    rows = pd.DataFrame(inliers[:3].copy(), columns=list("abcdef"))
    rows.loc[1, "d"] += 8 * inliers[:, 3].std()

    explained = detector.explain(rows, top_k=2)
    assert list(explained.columns) == ["row", "rank", "feature", "actual", "expected", "error_share"]
    assert len(explained) == 6
    top = explained[(explained["row"] == 1) & (explained["rank"] == 1)].iloc[0]
    assert top["feature"] == "d"
    assert top["actual"] == pytest.approx(rows.loc[1, "d"])
    assert top["error_share"] > 0.5
    # The reconstruction stays near the value the other features imply.
    assert abs(top["expected"] - inliers[1, 3]) < abs(top["actual"] - inliers[1, 3]) / 2


def test_explain_shares_sum_to_one_in_original_units(fitted, inliers):
    explained = fitted.explain(inliers[:5], top_k=None)
    assert len(explained) == 30
    np.testing.assert_allclose(explained.groupby("row")["error_share"].sum(), 1.0, rtol=1e-9)
    # The expected value is the mean of the networks' reconstructions.
    recon = np.mean([member.reconstruct(inliers[:5]) for member in fitted.estimators_], axis=0)
    for _, line in explained.iterrows():
        column = int(line["feature"][1:])
        assert line["actual"] == inliers[line["row"], column]
        assert line["expected"] == recon[line["row"], column]
    assert explained.loc[explained["rank"] == 1, "error_share"].min() >= 1 / 6


def test_explain_rejects_bad_top_k(fitted, inliers):
    with pytest.raises(ConfigError, match="top_k must be a positive integer or None, got 0"):
        fitted.explain(inliers, top_k=0)


# --- model files ------------------------------------------------------------------------


@pytest.mark.parametrize("params", [dict(), dict(fpr=0.1)], ids=["contamination", "fpr"])
def test_save_and_load_gives_identical_outputs(inliers, tmp_path, params):
    frame = pd.DataFrame(inliers, columns=list("abcdef"))
    detector = small_detector(**params).fit(frame)
    detector.save(tmp_path / "det")
    loaded = aekit.load(tmp_path / "det")

    assert isinstance(loaded, AnomalyDetector)
    assert sorted(p.name for p in (tmp_path / "det").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert len(loaded.estimators_) == 4
    assert loaded.estimator_ is loaded.estimators_[0]
    assert "the mean over 4 networks trained from different seeds" in (tmp_path / "det" / "README.md").read_text()
    for saved, restored in zip(detector.estimators_, loaded.estimators_):
        assert restored.seed_ == saved.seed_
        np.testing.assert_array_equal(restored.reconstruct(frame), saved.reconstruct(frame))
    np.testing.assert_array_equal(loaded.feature_error_scales_, detector.feature_error_scales_)
    own_params = detector.get_params(deep=False)
    assert {**loaded.get_params(deep=False), "estimator": None} == {**own_params, "estimator": None}
    assert loaded.estimator.get_params() == detector.estimator.get_params()
    assert (loaded.threshold_, loaded.threshold_method_, loaded.offset_) == (
        detector.threshold_, detector.threshold_method_, detector.offset_
    )
    np.testing.assert_array_equal(loaded.training_errors_, detector.training_errors_)
    np.testing.assert_array_equal(loaded.reconstruction_error(frame), detector.reconstruction_error(frame))
    np.testing.assert_array_equal(loaded.predict(frame), detector.predict(frame))
    pd.testing.assert_frame_equal(loaded.explain(frame, top_k=3), detector.explain(frame, top_k=3))
    if "fpr" in params:
        np.testing.assert_array_equal(loaded.calibration_errors_, detector.calibration_errors_)
        np.testing.assert_array_equal(loaded.p_values(frame), detector.p_values(frame))
    loaded.set_threshold(contamination=0.3)
    assert np.mean(loaded.predict(frame) == -1) == pytest.approx(0.3, abs=1 / len(frame))


def test_default_estimator_round_trip(inliers, tmp_path):
    detector = AnomalyDetector(random_state=0).fit(inliers[:80])
    detector.save(tmp_path / "det")
    loaded = aekit.load(tmp_path / "det")
    assert loaded.estimator is None
    np.testing.assert_array_equal(loaded.reconstruction_error(inliers), detector.reconstruction_error(inliers))


def test_older_single_network_file_loads(inliers, tmp_path):
    # Files written before n_estimators existed: one network, one flat row of scales.
    detector = small_detector(n_estimators=1).fit(inliers)
    detector.save(tmp_path / "det")
    config_path = tmp_path / "det" / "config.json"
    config = json.loads(config_path.read_text())
    wrapper = config["wrapper"]
    del wrapper["members"], wrapper["params"]["n_estimators"]
    wrapper["state"]["feature_error_scales"] = wrapper["state"]["feature_error_scales"][0]
    config_path.write_text(json.dumps(config))

    loaded = aekit.load(tmp_path / "det")
    assert loaded.n_estimators == 1
    assert loaded.feature_error_scales_.shape == (1, 6)
    np.testing.assert_array_equal(loaded.reconstruction_error(inliers), detector.reconstruction_error(inliers))


def test_unfitted_detector_raises(inliers, tmp_path):
    detector = small_detector()
    with pytest.raises(aekit.NotFittedError):
        detector.predict(inliers)
    with pytest.raises(aekit.NotFittedError):
        detector.save(tmp_path / "det")


def test_clean_rows_disable_dropout(inliers):
    """contamination=0 declares the training rows free of outliers, so the default
    network needs no dropout. Any other share keeps it."""
    clean = AnomalyDetector(contamination=0, random_state=0).fit(inliers[:100])
    assert clean.estimator_.dropout == 0.0
    assert clean.threshold_ >= clean.training_errors_.max()
    contaminated = AnomalyDetector(contamination=0.01, random_state=0).fit(inliers[:100])
    assert contaminated.estimator_.dropout == 0.2
    user_estimator = AutoEncoder(dropout=0.3, max_epochs=2)
    explicit = AnomalyDetector(user_estimator, contamination=0, random_state=0).fit(inliers[:100])
    assert explicit.estimator_.dropout == 0.3
    # Clean rows also get longer runs: 1500 steps in place of 500, here 32 batches per epoch.
    assert detector_defaults(2000, clean=True)["max_epochs"] == 47
    assert detector_defaults(2000)["max_epochs"] == 16
