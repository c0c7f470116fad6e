"""A drop-in for PyOD's ``AutoEncoder`` detector, backed by aekit.

PyOD users switch by changing one import::

    from pyod.models.auto_encoder import AutoEncoder   # before
    from aekit.pyod import AutoEncoder                 # after

The class keeps PyOD's names and conventions, as in PyOD 2.x and 3.x
(``pyod/models/base.py``): ``decision_scores_``, ``threshold_``, ``labels_`` with
1 for outliers and 0 for inliers, ``decision_function`` higher for more abnormal
rows, ``predict``, ``predict_proba`` ("linear" or "unify"), ``predict_confidence``
and ``contamination``. PyOD itself is not imported.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import erf
from scipy.stats import binom
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .estimators.anomaly import AnomalyDetector, detector_defaults
from .estimators.autoencoder import AutoEncoder as DenseAutoEncoder
from .exceptions import ConfigError
from .scoring import check_contamination, contamination_threshold

logger = logging.getLogger(__name__)

PROBABILITY_METHODS = ("linear", "unify")
# Optimizer steps of the one network: three times those of each of AnomalyDetector's
# networks, since no average over networks smooths a single network's errors. In runs of
# the protocol of benchmarks/anomaly.py (twelve ADBench tables, 3 seeds), one network of
# 1500 steps reached a mean ROC AUC of 0.893, and one of 500 steps 0.876.
SINGLE_NETWORK_STEPS = 1500


class AutoEncoder(BaseEstimator):
    """Autoencoder outlier detector with PyOD's interface, trained by aekit.

    Rows are scored by their reconstruction error; see
    :class:`aekit.AnomalyDetector` for the engine. Parameters left at ``None`` take
    aekit's detector defaults, which differ from PyOD's: a network sized from the
    data and about 1500 optimizer steps on batches of 64 rows, where PyOD trains
    ``[64, 32]`` for 10 epochs on batches of 32. Like PyOD's class it trains one
    network, where :class:`aekit.AnomalyDetector` averages four shorter runs.

    Parameters
    ----------
    contamination : float in (0, 0.5], default=0.1
        Share of the training rows labelled as outliers; sets ``threshold_``.
    preprocessing : bool, default=True
        Standardise each column with the training rows' mean and standard deviation.
    lr : float, default=1e-3
        Adam's learning rate.
    epoch_num : int or None, default=None
        Epochs to train; None gives about 1500 optimizer steps (at most 200 epochs).
    batch_size : int or None, default=None
        Rows per training step; None uses 64.
    optimizer_name : {"adam"}, default="adam"
        Only Adam is available.
    device : str or None, default=None
        "cpu", "cuda", "cuda:N" or "mps"; None picks CUDA, then MPS, then the CPU.
    random_state : int or None, default=42
        Seed for weight initialisation, shuffling and dropout.
    use_compile : bool, default=False
        Accepted for PyOD compatibility; ``True`` raises ``ConfigError``.
    compile_mode : str, default="default"
        Accepted for PyOD compatibility and ignored.
    verbose : int, default=1
        0 silent, 1 progress bar (in a terminal), 2 a log line per epoch.
    optimizer_params : dict or None, default=None
        Extra optimizer arguments are not supported; a non-empty dict raises
        ``ConfigError``. PyOD's default adds ``weight_decay=1e-5`` here.
    hidden_neuron_list : sequence of int or None, default=None
        Encoder widths from the input side; the last is the bottleneck and the
        decoder mirrors the others, as in PyOD. None sizes the network from the
        data like :class:`aekit.AutoEncoder`.
    hidden_activation_name : str, default="relu"
        "relu", "leaky_relu", "elu", "selu", "gelu", "silu", "tanh" or "sigmoid".
    batch_norm : bool, default=True
        Batch normalisation in the hidden layers.
    dropout_rate : float, default=0.2
        Dropout after each hidden layer.

    Attributes
    ----------
    decision_scores_ : ndarray of shape (n_samples,)
        Outlier scores of the training rows, higher = more abnormal.
    threshold_ : float
        The ``1 - contamination`` percentile of ``decision_scores_``.
    labels_ : ndarray of int of shape (n_samples,)
        1 for the training rows scoring above ``threshold_``, else 0.
    detector_ : AnomalyDetector
        The fitted aekit detector, for :meth:`AnomalyDetector.explain`, p-values or
        saving with ``detector_.save(path)``.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit.pyod import AutoEncoder
    >>> X = np.random.default_rng(0).normal(size=(200, 4))
    >>> clf = AutoEncoder(contamination=0.05, verbose=0).fit(X)
    >>> int(clf.labels_.sum())
    10
    >>> clf.predict(np.array([[9.0, 0.0, 0.0, 0.0]]))
    array([1])
    """

    def __init__(
        self,
        contamination: float = 0.1,
        preprocessing: bool = True,
        lr: float = 1e-3,
        epoch_num: int | None = None,
        batch_size: int | None = None,
        optimizer_name: str = "adam",
        device: str | None = None,
        random_state: int | None = 42,
        use_compile: bool = False,
        compile_mode: str = "default",
        verbose: int = 1,
        optimizer_params: dict[str, Any] | None = None,
        hidden_neuron_list: Sequence[int] | None = None,
        hidden_activation_name: str = "relu",
        batch_norm: bool = True,
        dropout_rate: float = 0.2,
    ) -> None:
        self.contamination = contamination
        self.preprocessing = preprocessing
        self.lr = lr
        self.epoch_num = epoch_num
        self.batch_size = batch_size
        self.optimizer_name = optimizer_name
        self.device = device
        self.random_state = random_state
        self.use_compile = use_compile
        self.compile_mode = compile_mode
        self.verbose = verbose
        self.optimizer_params = optimizer_params
        self.hidden_neuron_list = hidden_neuron_list
        self.hidden_activation_name = hidden_activation_name
        self.batch_norm = batch_norm
        self.dropout_rate = dropout_rate

    def fit(self, X: Any, y: Any = None) -> AutoEncoder:
        """Train on ``X`` (``y`` is ignored) and set ``decision_scores_``, ``threshold_``
        and ``labels_``."""
        contamination = check_contamination(self.contamination, allow_zero=False)
        estimator = DenseAutoEncoder(**self._estimator_params(len(np.asarray(X))))
        self.detector_ = AnomalyDetector(estimator=estimator, n_estimators=1, contamination=contamination).fit(X)

        self.decision_scores_ = self.detector_.training_errors_.astype(np.float64)
        self.threshold_ = contamination_threshold(self.decision_scores_, contamination)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        # Class count, and mean and spread of the training scores, as PyOD's predict_proba reads them.
        self._classes = 2
        self._mu = float(np.mean(self.decision_scores_))
        self._sigma = float(np.std(self.decision_scores_))
        return self

    def _estimator_params(self, n_samples: int) -> dict[str, Any]:
        """Translate PyOD's parameters to those of :class:`aekit.AutoEncoder`."""
        if self.optimizer_name != "adam":
            raise ConfigError(f"optimizer_name must be 'adam', the only optimizer aekit trains with, got {self.optimizer_name!r}.")
        if self.optimizer_params:
            raise ConfigError(
                f"optimizer_params={self.optimizer_params!r} is not supported; aekit's Adam takes only lr. "
                "Leave optimizer_params as None."
            )
        if self.use_compile:
            raise ConfigError("use_compile=True is not supported; leave use_compile=False.")

        params = detector_defaults(n_samples, self.batch_size, steps=SINGLE_NETWORK_STEPS)
        if self.epoch_num is not None:
            params["max_epochs"] = self.epoch_num
        if self.hidden_neuron_list is not None:
            widths = list(self.hidden_neuron_list)
            if not widths:
                raise ConfigError("hidden_neuron_list must hold at least one width (the bottleneck), got [].")
            params["hidden_dims"] = tuple(widths[:-1])
            params["latent_dim"] = widths[-1]
        params.update(
            learning_rate=self.lr,
            activation=self.hidden_activation_name,
            batch_norm=self.batch_norm,
            dropout=self.dropout_rate,
            scaling="standard" if self.preprocessing else "none",
            device="auto" if self.device is None else self.device,
            random_state=self.random_state,
            verbose=self.verbose,
        )
        return params

    def decision_function(self, X: Any) -> np.ndarray:
        """Outlier score of each row, higher = more abnormal (its reconstruction error)."""
        check_is_fitted(self, ["decision_scores_", "threshold_", "labels_"])
        return self.detector_.reconstruction_error(X).astype(np.float64)

    def predict(self, X: Any, return_confidence: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Label each row: 1 for an outlier, 0 for an inlier; optionally with
        :meth:`predict_confidence`."""
        labels = (self.decision_function(X) > self.threshold_).astype(int)
        if return_confidence:
            return labels, self.predict_confidence(X)
        return labels

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit on ``X`` and return ``labels_``."""
        return self.fit(X, y).labels_

    def predict_proba(
        self, X: Any, method: str = "linear", return_confidence: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Probability of each row being an inlier (column 0) and an outlier (column 1).

        ``"linear"`` maps scores linearly so that the training scores span [0, 1],
        clipped to that range. ``"unify"`` applies the Gaussian error function to the
        scores standardised by the training scores' mean and standard deviation,
        clipped to [0, 1] (Kriegel et al., "Interpreting and Unifying Outlier
        Scores", SDM 2011).
        """
        if method not in PROBABILITY_METHODS:
            raise ConfigError(f"method must be one of {PROBABILITY_METHODS}, got {method!r}.")
        scores = self.decision_function(X)
        if method == "linear":
            low, high = float(np.min(self.decision_scores_)), float(np.max(self.decision_scores_))
            outlier = (scores - low) / (high - low) if high > low else np.zeros_like(scores)
        else:
            outlier = erf((scores - self._mu) / (self._sigma * np.sqrt(2))) if self._sigma > 0 else np.zeros_like(scores)
        outlier = np.clip(outlier, 0, 1)
        probabilities = np.column_stack([1 - outlier, outlier])
        if return_confidence:
            return probabilities, self.predict_confidence(X)
        return probabilities

    def predict_confidence(self, X: Any) -> np.ndarray:
        """Confidence in each row's label, in [0, 1]: how likely the same label is
        under small changes of the training rows (Perini et al., "Quantifying the
        confidence of anomaly detectors in their example-wise predictions",
        ECML PKDD 2020).

        A row's outlier probability is estimated from its rank among the training
        scores, ``(1 + #{training scores <= score}) / (n + 2)``; the confidence is the
        binomial probability that the row still ranks among the ``contamination``
        share of outliers, or its complement for rows labelled inliers.
        """
        scores = self.decision_function(X)
        n = len(self.decision_scores_)
        at_most = np.searchsorted(np.sort(self.decision_scores_), scores, side="right")
        outlier_probability = (1 + at_most) / (2 + n)
        n_inliers = n - int(n * self.contamination)
        confidence = 1 - binom.cdf(n_inliers, n, outlier_probability)
        inliers = scores <= self.threshold_
        confidence[inliers] = 1 - confidence[inliers]
        return confidence

    def explain(self, X: Any, top_k: int | None = 5):
        """Per-feature breakdown of each row's score; see :meth:`AnomalyDetector.explain`."""
        check_is_fitted(self, "detector_")
        return self.detector_.explain(X, top_k)
