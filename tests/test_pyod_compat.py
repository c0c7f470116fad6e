import subprocess
import sys

import numpy as np
import pytest

from aekit import AnomalyDetector, ConfigError
from aekit.pyod import AutoEncoder


def table_with_outliers():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(2, 5))
    inliers = rng.normal(size=(190, 2)) @ mixing + 0.05 * rng.normal(size=(190, 5))
    outliers = rng.uniform(-4, 4, size=(10, 5))
    return np.vstack([inliers, outliers]), np.r_[np.zeros(190), np.ones(10)]


SMALL = dict(epoch_num=40, batch_size=32, hidden_neuron_list=[16, 2], verbose=0, random_state=0)


@pytest.fixture(scope="module")
def fitted():
    X, _ = table_with_outliers()
    return AutoEncoder(contamination=0.05, **SMALL).fit(X)


def test_pyod_attributes_and_labels(fitted):
    X, y = table_with_outliers()
    scores = fitted.decision_scores_
    assert scores.shape == (200,)
    assert scores.dtype == np.float64
    assert fitted.threshold_ == pytest.approx(np.percentile(scores, 95))
    np.testing.assert_array_equal(fitted.labels_, (scores > fitted.threshold_).astype(int))
    assert set(np.unique(fitted.labels_)) == {0, 1}
    assert fitted.labels_.sum() == 10
    # Outliers score higher: most planted outliers are labelled 1.
    assert fitted.labels_[y == 1].sum() >= 8
    np.testing.assert_array_equal(fitted.decision_function(X), scores)
    np.testing.assert_array_equal(fitted.predict(X), fitted.labels_)


def test_pyod_parameters_reach_the_network(fitted):
    inner = fitted.detector_.estimator_
    assert inner.hidden_dims_ == (16,)
    assert inner.latent_dim_ == 2
    assert inner.max_epochs == 40
    assert inner.batch_size == 32
    assert inner.dropout == 0.2
    assert isinstance(fitted.detector_, AnomalyDetector)


def test_predict_proba_methods(fitted):
    X, _ = table_with_outliers()
    for method in ("linear", "unify"):
        proba = fitted.predict_proba(X, method=method)
        assert proba.shape == (200, 2)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        assert proba.min() >= 0 and proba.max() <= 1
    linear = fitted.predict_proba(X)[:, 1]
    assert linear[np.argmin(fitted.decision_scores_)] == 0
    assert linear[np.argmax(fitted.decision_scores_)] == 1
    with pytest.raises(ConfigError, match="method must be one of"):
        fitted.predict_proba(X, method="softmax")


def test_predict_confidence(fitted):
    X, _ = table_with_outliers()
    confidence = fitted.predict_confidence(X)
    assert confidence.shape == (200,)
    assert confidence.min() >= 0 and confidence.max() <= 1
    labels, same = fitted.predict(X, return_confidence=True)
    np.testing.assert_array_equal(labels, fitted.labels_)
    np.testing.assert_array_equal(same, confidence)
    _, proba_confidence = fitted.predict_proba(X, return_confidence=True)
    np.testing.assert_array_equal(proba_confidence, confidence)


def test_matches_pyod_base_detector_formulas(fitted):
    base = pytest.importorskip("pyod.models.base", reason="PyOD is an optional benchmark dependency")
    X, _ = table_with_outliers()
    for method in ("linear", "unify"):
        np.testing.assert_allclose(
            fitted.predict_proba(X, method=method), base.BaseDetector.predict_proba(fitted, X, method=method)
        )
    np.testing.assert_allclose(fitted.predict_confidence(X), base.BaseDetector.predict_confidence(fitted, X))
    np.testing.assert_array_equal(fitted.predict(X), base.BaseDetector.predict(fitted, X))


def test_fit_predict_returns_labels():
    X, _ = table_with_outliers()
    clf = AutoEncoder(contamination=0.1, **SMALL)
    np.testing.assert_array_equal(clf.fit_predict(X), clf.labels_)
    assert clf.labels_.sum() == 20


@pytest.mark.parametrize(
    "params, fragment",
    [
        (dict(contamination=0.0), r"contamination must be a number in \(0, 0.5\]"),
        (dict(contamination=0.6), r"contamination must be a number in \(0, 0.5\]"),
        (dict(optimizer_name="sgd"), "optimizer_name must be 'adam'"),
        (dict(optimizer_params={"weight_decay": 1e-5}), "optimizer_params=.* is not supported"),
        (dict(use_compile=True), "use_compile=True is not supported"),
        (dict(hidden_neuron_list=[]), "hidden_neuron_list must hold at least one width"),
    ],
)
def test_invalid_pyod_parameters(params, fragment):
    X, _ = table_with_outliers()
    with pytest.raises(ConfigError, match=fragment):
        AutoEncoder(verbose=0, **params).fit(X)


def test_module_does_not_import_pyod():
    code = "import sys, aekit.pyod; assert 'pyod' not in sys.modules, 'pyod was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
