"""``AnomalyDetector``: flag rows that an autoencoder cannot reconstruct, and say why."""

from __future__ import annotations

import logging
import math
import numbers
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OutlierMixin, clone
from sklearn.utils.validation import check_is_fitted

from .._seed import derive_seed, resolve_seed
from ..data.schema import DEFAULT_MAX_CATEGORIES, NUMERIC, restore_numeric_dtype
from ..data.validation import check_scores_finite, to_float_array
from ..exceptions import ConfigError, DataError
from ..models.layers import check_choice
from ..scoring import (
    check_contamination,
    check_fpr,
    check_threshold,
    conformal_p_values,
    conformal_threshold,
    contamination_threshold,
    resolve_threshold_rule,
)
from ._base import BaseAutoEncoder
from ._checkpoints import read_run
from ._tabular import cell_details
from .autoencoder import AutoEncoder

logger = logging.getLogger(__name__)

# Share of the training rows held out for calibration when fpr is set and
# calibration_fraction is "auto".
DEFAULT_CALIBRATION_FRACTION = 0.2

# Training budget of each default network, in optimizer steps. It is enough for a dense
# autoencoder on a table to learn the bulk of the rows, and too short to learn to
# reconstruct the rare rows it should flag. Epochs are capped for tiny tables.
# NOTE: the step budget, dropout, median weighting and the number of networks were
# picked by their mean ROC AUC over the twelve ADBench tables of benchmarks/anomaly.py,
# so those tables are not an independent test of them.
DEFAULT_TRAINING_STEPS = 500
# Training budget of each network when the rows are declared clean (contamination=0):
# with no outliers to keep out of reach, a longer run only learns the normal rows better.
# Runs of benchmarks/tabular.py on NSL-KDD (trained on normal rows, 3 seeds) gave these
# mean ROC AUCs: four networks of 500 steps 0.978, one of 1500 steps 0.984, and four of
# 1500 steps 0.984.
CLEAN_TRAINING_STEPS = 1500
# Networks of the default detector. Without labels there is no way to tell a good
# network from a lucky one, so the detector averages the scores of networks trained
# from different seeds, which lowers the variance of the score between runs. One-off
# runs of the protocol of benchmarks/anomaly.py (twelve ADBench tables, 3 seeds, one
# CPU thread) measured the mean ROC AUC of several set-ups. One network of 500 steps
# reached 0.876 and one of 1500 steps 0.893. Three networks of 500 steps reached 0.896,
# four of 500 steps 0.898, and five of 300 steps 0.893. Short networks are weak alone
# but strong together.
DEFAULT_N_ESTIMATORS = 4
DEFAULT_BATCH_SIZE = 64
MAX_EPOCHS = 200
# Dropout makes the network rebuild each feature from the others, which keeps it
# from copying rows through, the way a denoising autoencoder does. So it learns the
# outliers among the training rows less well. Training rows declared clean
# (contamination=0) need no such guard. A one-off check, not a script in this
# repository, trained the default network on a seeded 80% of the normal rows of the
# twelve ADBench tables of benchmarks/anomaly.py (3 seeds) and scored the other rows.
# The mean ROC AUC was 0.9302 without dropout and 0.9278 with it (7 tables better, 4 worse).
DEFAULT_DROPOUT = 0.2

FEATURE_WEIGHTINGS: tuple[str, ...] = ("auto", "median", "none")
# A feature's error scale is at least this share of the mean scale over features,
# so a feature that is reconstructed almost exactly (a constant column) cannot
# dominate the score through a near-zero divisor.
MIN_RELATIVE_ERROR_SCALE = 1e-2


def detector_defaults(
    n_samples: int, batch_size: int | None = None, *, clean: bool = False, steps: int | None = None
) -> dict[str, Any]:
    """Parameters of each :class:`~aekit.AutoEncoder` that :class:`AnomalyDetector`
    trains when it is given no estimator, for ``n_samples`` training rows.

    The architecture is the estimator's own data-sized default, with dropout 0.2. Each
    network trains for about ``steps`` optimizer steps on batches of ``batch_size`` rows
    (default 64), at most 200 epochs, on every row and without early stopping, so
    training time hardly grows with the table's length. ``steps`` defaults to 500.
    When ``clean`` declares that the training rows hold no outliers, the networks train
    without dropout and for 1500 steps: dropout and short runs are there to keep the
    networks from learning to reconstruct outliers.
    """
    if steps is None:
        steps = CLEAN_TRAINING_STEPS if clean else DEFAULT_TRAINING_STEPS
    if batch_size is None:
        batch_size = min(DEFAULT_BATCH_SIZE, max(2, n_samples))
    steps_per_epoch = math.ceil(n_samples / batch_size)
    max_epochs = int(min(MAX_EPOCHS, max(1, round(steps / steps_per_epoch))))
    return {
        "dropout": 0.0 if clean else DEFAULT_DROPOUT,
        "batch_size": batch_size,
        "max_epochs": max_epochs,
        "validation_fraction": 0.0,
        "early_stopping": False,
    }


def check_n_estimators(n_estimators: object) -> int:
    """Return ``n_estimators`` as an int after checking it is a positive integer."""
    if isinstance(n_estimators, bool) or not isinstance(n_estimators, numbers.Integral) or n_estimators < 1:
        raise ConfigError(
            f"n_estimators must be a positive integer, the number of autoencoders whose scores "
            f"are averaged, got {n_estimators!r}; 1 trains a single network."
        )
    return int(n_estimators)


class AnomalyDetector(OutlierMixin, BaseEstimator):
    """Outlier detector that scores rows by autoencoders' reconstruction error.

    The detector trains aekit autoencoders (four by default, from different seeds) on
    rows that are mostly normal. A row that the networks reconstruct badly is unlike
    the training rows; rows scoring above ``threshold_`` are flagged as outliers. It
    follows scikit-learn's outlier detector conventions, and :meth:`explain` reports
    which features made a row an outlier.

    Parameters
    ----------
    estimator : BaseAutoEncoder or None, default=None
        The autoencoder to train, for example ``aekit.AutoEncoder(latent_dim=4)``; it
        is cloned in :meth:`fit`, so the object passed stays unfitted. ``None`` trains
        ``aekit.AutoEncoder`` networks with the detector defaults of
        :func:`detector_defaults`: the data-sized dense network with dropout 0.2,
        batches of 64 rows and about 500 optimizer steps (at most 200 epochs) on
        every training row, with no early stopping. A short run with dropout keeps
        the networks from learning to reconstruct the outliers in the training rows.
        With ``contamination=0`` they train without dropout, for 1500 steps.
    n_estimators : int, default=4
        Number of autoencoders trained on the same rows, each from its own seed; a
        row's reconstruction error is the mean of theirs. Averaging makes the score
        depend less on one network's luck, and fit time grows in proportion to
        ``n_estimators``. Clones of a given ``estimator`` each train as configured;
        the first keeps its ``random_state`` and the others get seeds derived from
        it. 1 trains a single network.
    feature_weighting : {"auto", "median", "none"}, default="auto"
        How the per-feature errors (squared errors in the scaled units the model
        trains in) add up to a row's score. ``"median"`` divides each feature's
        error by its median over the training rows before averaging, so a feature
        that is hard to reconstruct for every row does not drown out a rare large
        error elsewhere. ``"none"`` uses the estimator's own
        ``reconstruction_error``. ``"auto"`` is ``"median"`` for tables and
        ``"none"`` for images, whose pixels already share one scale.
    contamination : float, default=0.1
        Expected share of outliers among the training rows, in [0, 0.5]. When
        neither ``fpr`` nor ``threshold`` is set, the threshold flags that share of
        the training rows. 0 declares the training rows clean, for example normal
        rows picked by hand. Then no training row is flagged, and the default
        autoencoders train longer and without dropout.
    fpr : float or None, default=None
        Target false-positive rate in (0, 1): the share of normal rows, like the
        training rows, that may be flagged. The threshold comes from conformal
        p-values on held-out calibration rows (see :meth:`p_values`).
    threshold : float or None, default=None
        An explicit reconstruction-error threshold. Setting both ``fpr`` and
        ``threshold`` raises ``ConfigError``.
    calibration_fraction : float or "auto", default="auto"
        Share of the training rows held out, by a seeded shuffle, to calibrate
        p-values; the autoencoders never train on them. ``"auto"`` holds out 20%
        when ``fpr`` is set and none otherwise. A number in (0, 1) always holds out
        that share, so that :meth:`p_values` and ``set_threshold(fpr=...)`` work
        whatever the rule at fit time; 0 holds out none.
    random_state : int, RandomState or None, default=None
        Seed for the calibration split and, when ``estimator`` is None, for the
        default autoencoders (the first gets this seed, the others seeds derived
        from it). A given estimator keeps its own ``random_state``.
    device : str, default="auto"
        Device of the default autoencoders: "auto", "cpu", "cuda", "cuda:N" or "mps".
    verbose : int, default=0
        Verbosity of the default autoencoders: 0 silent, 1 progress bar, 2 a log line
        per epoch.
    checkpoint_dir, checkpoint_every, resume
        Training checkpoints of the autoencoders, as in :class:`aekit.AutoEncoder`;
        they override the given estimator's own. The first network checkpoints into
        ``checkpoint_dir`` and the others into its subfolders ``member-1``,
        ``member-2``, ... Resuming gives the detector of an uninterrupted run.
    categorical_columns, max_categories, impute
        Table settings of the default autoencoders, as in :class:`aekit.AutoEncoder`:
        extra categorical columns, the cap on categories per column, and the handling
        of missing values (None rejects them, "mean" fills them, "model" masks them).
        A given ``estimator`` keeps its own settings.

    Attributes
    ----------
    estimators_ : list of BaseAutoEncoder
        The ``n_estimators`` trained autoencoders.
    estimator_ : BaseAutoEncoder
        The first of ``estimators_``. :meth:`impute_missing`, reports and the CLI's
        ``encode``, ``reconstruct`` and ``impute`` commands use this network alone.
    feature_error_scales_ : ndarray of shape (n_estimators, n_features) or None
        Each autoencoder's median error of each feature over the rows it trained on,
        the divisors of ``feature_weighting="median"``; None for ``"none"``.
    training_errors_ : ndarray of shape (n_samples,)
        Reconstruction error of every row passed to :meth:`fit`, in order,
        calibration rows included. Scoring those rows again gives the same values.
    calibration_errors_ : ndarray of shape (n_calibration,) or None
        Sorted reconstruction errors of the held-out calibration rows, or None when
        none were held out.
    threshold_ : float
        Reconstruction error above which a row is an outlier (``inf`` when an
        ``fpr`` target cannot be reached with the calibration rows at hand).
    threshold_method_ : {"contamination", "fpr", "threshold"}
        The rule that set ``threshold_``.
    offset_ : float
        ``-threshold_``, so that ``decision_function = score_samples - offset_``, as
        in scikit-learn's outlier detectors.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Column names, when fitted on a DataFrame with string column names.
    seed_ : int
        The seed actually used.

    See Also
    --------
    aekit.pyod.AutoEncoder : the same engine with PyOD's names and 0/1 labels.

    Notes
    -----
    Scores are computed in evaluation mode (no dropout; batch normalisation uses its
    running statistics), so a row's score does not depend on the other rows in the
    call or on how they are batched.

    Examples
    --------
    >>> import numpy as np
    >>> from aekit import AnomalyDetector
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 5))
    >>> detector = AnomalyDetector(contamination=0.05, random_state=0).fit(X)
    >>> int((detector.predict(X) == -1).sum())
    15
    >>> detector.predict([[8.0, 0.0, 0.0, 0.0, 0.0]])
    array([-1])
    """

    def __init__(
        self,
        estimator: BaseAutoEncoder | None = None,
        *,
        n_estimators: int = DEFAULT_N_ESTIMATORS,
        feature_weighting: str = "auto",
        contamination: float = 0.1,
        fpr: float | None = None,
        threshold: float | None = None,
        calibration_fraction: float | str = "auto",
        random_state: int | np.random.RandomState | None = None,
        device: str = "auto",
        verbose: int = 0,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        categorical_columns: Sequence[str | int] | None = None,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        impute: str | None = None,
    ) -> None:
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.feature_weighting = feature_weighting
        self.contamination = contamination
        self.fpr = fpr
        self.threshold = threshold
        self.calibration_fraction = calibration_fraction
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.categorical_columns = categorical_columns
        self.max_categories = max_categories
        self.impute = impute

    # --- fitting ----------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> AnomalyDetector:
        """Train the autoencoder on ``X`` and set the threshold.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features), or an image array
            Training rows, mostly normal. A DataFrame may have categorical columns,
            and missing values with ``impute`` set (see :class:`aekit.AutoEncoder`).
        y : ignored
            Present for scikit-learn compatibility.

        Returns
        -------
        self
        """
        method, value = resolve_threshold_rule(self.contamination, self.fpr, self.threshold)
        check_choice("feature_weighting", self.feature_weighting, FEATURE_WEIGHTINGS)
        n_estimators = check_n_estimators(self.n_estimators)
        # A DataFrame may hold categorical columns; the estimator checks its contents.
        n_samples = len(X) if isinstance(X, pd.DataFrame) else len(to_float_array(X)[0])
        seed = self._resolve_seed()
        fit_rows, calibration_rows = self._calibration_split(n_samples, method, seed)

        estimators = self._make_estimators(len(fit_rows), seed, n_estimators)
        fit_X = _take_rows(X, fit_rows)
        for index, estimator in enumerate(estimators):
            if n_estimators > 1:
                logger.info("training autoencoder %d of %d", index + 1, n_estimators)
            self._pass_checkpointing(estimator, seed, index)
            estimator.fit(fit_X)

        self.estimators_ = estimators
        self.estimator_ = estimator = estimators[0]
        self.seed_ = seed
        self.n_features_in_ = estimator.n_features_in_
        if hasattr(estimator, "feature_names_in_"):
            self.feature_names_in_ = estimator.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

        self.feature_error_scales_ = None
        if self._resolve_feature_weighting() == "median":
            # One pass of each network over all rows gives both the scales, from the rows
            # it trained on, and the training errors.
            member_errors = self._member_errors(X)
            self.feature_error_scales_ = np.stack([_error_scales(errors[fit_rows]) for errors in member_errors])
            self.training_errors_ = check_scores_finite(
                _mean_present(self._combine_errors(member_errors)).astype(np.float32)
            )
        else:
            self.training_errors_ = self.reconstruction_error(X)
        if len(calibration_rows):
            self.calibration_errors_ = np.sort(self.training_errors_[calibration_rows])
        else:
            self.calibration_errors_ = None
        self._apply_threshold(method, value)
        logger.info(
            "threshold %s=%g gives reconstruction error threshold %.6g; %d of %d training rows flagged",
            method, value, self.threshold_, int(np.sum(self.training_errors_ > self.threshold_)), n_samples,
        )
        return self

    def _resolve_seed(self) -> int:
        """Return the seed of this fit, which for a resumed unseeded run is the one it drew."""
        if self.resume and self.random_state is None:
            run = read_run(self.checkpoint_dir)
            if run is not None and "detector_seed" in run:
                return int(run["detector_seed"])
        return resolve_seed(self.random_state)

    def _pass_checkpointing(self, estimator: BaseAutoEncoder, seed: int, index: int) -> None:
        """Hand the checkpoint parameters to autoencoder ``index``, which runs the training.

        The first autoencoder checkpoints into ``checkpoint_dir`` itself and the others
        into its subfolders ``member-1``, ``member-2``, ...
        """
        if self.checkpoint_dir is None and not self.resume:
            return
        directory = self.checkpoint_dir
        if index > 0 and directory is not None:
            directory = os.path.join(directory, f"member-{index}")
        estimator.set_params(checkpoint_dir=directory, checkpoint_every=self.checkpoint_every, resume=self.resume)
        # Stored with each checkpoint, so that resuming an unseeded run splits the rows as before.
        estimator._checkpoint_run_extra = {"detector_seed": seed}

    def _resolve_feature_weighting(self) -> str:
        if self.feature_weighting == "auto":
            return "median" if len(self.estimator_.input_shape_) == 1 else "none"
        return self.feature_weighting

    def _calibration_fraction(self, method: str) -> float:
        fraction = self.calibration_fraction
        if fraction == "auto":
            return DEFAULT_CALIBRATION_FRACTION if method == "fpr" else 0.0
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 <= fraction < 1:
            raise ConfigError(
                f"calibration_fraction must be 'auto' or a number in [0, 1), got {fraction!r}."
            )
        if fraction == 0 and method == "fpr":
            raise ConfigError(
                "fpr needs held-out calibration rows, but calibration_fraction=0; use "
                "calibration_fraction='auto' or a number in (0, 1)."
            )
        return float(fraction)

    def _calibration_split(self, n_samples: int, method: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Return seeded (fit, calibration) row indices, each sorted."""
        fraction = self._calibration_fraction(method)
        n_calibration = int(round(n_samples * fraction))
        if fraction > 0 and (n_calibration == 0 or n_samples - n_calibration < 2):
            raise DataError(
                f"calibration_fraction={fraction} of {n_samples} rows leaves no calibration or "
                "training rows; pass more rows or change calibration_fraction."
            )
        # A generator separate from the estimator's, so the split does not shift its seed stream.
        order = np.random.default_rng([seed, 1]).permutation(n_samples)
        return np.sort(order[n_calibration:]), np.sort(order[:n_calibration])

    def _make_estimators(self, n_samples: int, seed: int, n_estimators: int) -> list[BaseAutoEncoder]:
        """Return the unfitted autoencoders; the first one's seed is the detector's own."""
        if self.estimator is None:
            defaults = detector_defaults(n_samples, clean=self.contamination == 0)
            return [
                AutoEncoder(
                    random_state=seed if index == 0 else derive_seed(seed, index),
                    device=self.device,
                    verbose=self.verbose,
                    categorical_columns=self.categorical_columns,
                    max_categories=self.max_categories,
                    impute=self.impute,
                    **defaults,
                )
                for index in range(n_estimators)
            ]
        if not isinstance(self.estimator, BaseAutoEncoder):
            raise ConfigError(
                f"estimator must be an aekit autoencoder estimator (such as aekit.AutoEncoder()) "
                f"or None, got {self.estimator!r}."
            )
        members = [clone(self.estimator) for _ in range(n_estimators)]
        given_state = self.estimator.random_state
        if given_state is not None:
            # A RandomState object would be copied into every clone and give them one
            # stream, so the others derive their seeds from the detector's seed instead.
            base = int(given_state) if isinstance(given_state, numbers.Integral) else seed
            for index, member in enumerate(members[1:], start=1):
                member.set_params(random_state=derive_seed(base, index))
        return members

    # --- thresholds -------------------------------------------------------------------

    def set_threshold(
        self, *, contamination: float | None = None, fpr: float | None = None, threshold: float | None = None
    ) -> AnomalyDetector:
        """Change the threshold rule without retraining; exactly one argument is given.

        The matching parameter is updated too (the other two go back to their
        defaults), so ``get_params`` and a refit use the new rule.

        Parameters
        ----------
        contamination : float, optional
            Share of the training rows to flag, in [0, 0.5].
        fpr : float, optional
            Target false-positive rate in (0, 1); needs calibration rows from fit.
        threshold : float, optional
            An explicit reconstruction-error threshold.

        Returns
        -------
        self
        """
        check_is_fitted(self, "estimator_")
        given = {
            name: value
            for name, value in (("contamination", contamination), ("fpr", fpr), ("threshold", threshold))
            if value is not None
        }
        if len(given) != 1:
            raise ConfigError(
                "set_threshold() takes exactly one of contamination, fpr or threshold, got "
                f"{given or 'none'}; for example set_threshold(fpr=0.01)."
            )
        (method, raw), = given.items()
        checks = {"contamination": check_contamination, "fpr": check_fpr, "threshold": check_threshold}
        value = checks[method](raw)

        self._apply_threshold(method, value)
        self.contamination = value if method == "contamination" else 0.1
        self.fpr = value if method == "fpr" else None
        self.threshold = value if method == "threshold" else None
        return self

    def _apply_threshold(self, method: str, value: float) -> None:
        if method == "contamination":
            threshold = contamination_threshold(self.training_errors_, value)
        elif method == "fpr":
            threshold = conformal_threshold(self._calibration_scores("fpr"), value)
        else:
            threshold = value
        self.threshold_ = float(threshold)
        self.threshold_method_ = method
        self.offset_ = -self.threshold_

    def _calibration_scores(self, needed_by: str) -> np.ndarray:
        if self.calibration_errors_ is None:
            raise ConfigError(
                f"{needed_by} needs calibration rows, but this detector was fitted without any; "
                "fit again with fpr set or with calibration_fraction in (0, 1)."
            )
        return self.calibration_errors_

    # --- scoring ----------------------------------------------------------------------

    def reconstruction_error(self, X: Any) -> np.ndarray:
        """Anomaly score of each row: its reconstruction error, higher = more anomalous.

        With ``feature_weighting="median"`` each feature's squared error is divided
        by ``feature_error_scales_`` before the mean over features. With several
        autoencoders the result is the mean of their errors.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "estimator_")
        if self.feature_error_scales_ is None:
            errors = [member.reconstruction_error(X) for member in self._members()]
            if len(errors) == 1:
                return errors[0]
            return check_scores_finite(np.mean(errors, axis=0, dtype=np.float64).astype(np.float32))
        if getattr(self.estimator_, "schema_", None) is None:
            # Checked here too, so that a NaN is reported as found while scoring.
            self.estimator_._check_inference_data(X, when="scoring")
        return check_scores_finite(_mean_present(self._feature_errors(X)[2]).astype(np.float32))

    def score_samples(self, X: Any) -> np.ndarray:
        """Normality of each row, higher = more normal: the negative reconstruction error.

        Returned as float64, the dtype of scikit-learn's outlier scores.
        """
        return -self.reconstruction_error(X).astype(np.float64)

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_``: negative for outliers, positive for inliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """Label each row: -1 for an outlier, +1 for an inlier."""
        return self._labels(self.reconstruction_error(X))

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit on ``X`` and return its labels (-1 outlier, +1 inlier)."""
        return self.fit(X)._labels(self.training_errors_)

    def _labels(self, errors: np.ndarray) -> np.ndarray:
        return np.where(errors > self.threshold_, -1, 1)

    def p_values(self, X: Any) -> np.ndarray:
        """Conformal p-value of each row against the held-out calibration rows.

        The p-value is ``(1 + #{calibration errors >= the row's error}) / (n + 1)``
        for ``n`` calibration rows; small values mean unusual rows. For a row drawn
        like the training rows, ``P(p <= alpha) <= alpha``.

        Raises
        ------
        ConfigError
            If the detector was fitted without calibration rows.
        """
        check_is_fitted(self, "estimator_")
        calibration = self._calibration_scores("p_values()")
        return conformal_p_values(self.reconstruction_error(X), calibration)

    def impute_missing(self, X: Any) -> Any:
        """Fill the missing cells of ``X`` with the autoencoder; see :meth:`aekit.AutoEncoder.impute_missing`."""
        check_is_fitted(self, "estimator_")
        if not hasattr(self.estimator_, "impute_missing"):
            raise ConfigError(
                f"{type(self.estimator_).__name__} cannot impute missing values; use aekit.AutoEncoder."
            )
        return self.estimator_.impute_missing(X)

    # --- explanations -----------------------------------------------------------------

    def explain(self, X: Any, top_k: int | None = 5) -> pd.DataFrame:
        """Break each row's reconstruction error down by feature.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        top_k : int or None, default=5
            Features listed per row, largest share first; None lists all.

        Returns
        -------
        DataFrame
            One line per (row, feature), ``top_k`` lines per row, with columns
            ``row`` (position in ``X``), ``rank`` (1 = largest share), ``feature``
            (column name, or ``x<j>`` for the j-th column), ``actual`` (the value in
            ``X``), ``expected`` (the reconstruction, in the original units) and
            ``error_share`` (the feature's share of the row's reconstruction error,
            weighted as in :meth:`reconstruction_error`; the shares of all features
            sum to 1). For a table with categorical columns, ``expected`` is the
            most likely category there, and a ``probability`` column gives the
            actual category's probability under the model (NaN for numeric columns).
        """
        check_is_fitted(self, "estimator_")
        n_features = self.n_features_in_
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1):
            raise ConfigError(f"top_k must be a positive integer or None, got {top_k!r}.")
        k = n_features if top_k is None else min(int(top_k), n_features)

        if _has_schema(self.estimator_):
            return self._explain_table(X, k)
        actual, expected, feature_errors = self._feature_errors(X)
        totals = feature_errors.sum(axis=1, keepdims=True)
        shares = np.divide(feature_errors, totals, out=np.full_like(feature_errors, 1.0 / n_features), where=totals > 0)

        # Stable sort on the negated shares keeps column order among equal shares.
        order = np.argsort(-shares, axis=1, kind="stable")[:, :k]  # (n_samples, k)
        rows = np.repeat(np.arange(len(shares)), k)
        columns = order.ravel()
        names = np.asarray(self._feature_names(), dtype=object)
        return pd.DataFrame(
            {
                "row": rows,
                "rank": np.tile(np.arange(1, k + 1), len(shares)),
                "feature": names[columns],
                "actual": actual[rows, columns],
                "expected": expected[rows, columns],
                "error_share": shares[rows, columns],
            }
        )

    def _explain_table(self, X: Any, k: int) -> pd.DataFrame:
        """Explain rows of a table with a column schema, each column in its own terms.

        Numeric columns get the actual and expected (reconstructed) value. Categorical
        columns get the actual and expected (most likely) category, and ``probability``
        is the actual category's probability under the model (NaN for numeric columns).
        """
        actual, expected, errors, probabilities = self._table_errors(X)
        errors = np.nan_to_num(errors, nan=0.0)
        totals = errors.sum(axis=1, keepdims=True)
        n_columns = errors.shape[1]
        shares = np.divide(errors, totals, out=np.full_like(errors, 1.0 / n_columns), where=totals > 0)

        order = np.argsort(-shares, axis=1, kind="stable")[:, :k]  # (n_samples, k)
        rows = np.repeat(np.arange(len(shares)), k)
        columns = order.ravel()
        actual_cells = actual.to_numpy(dtype=object)
        expected_cells = expected.to_numpy(dtype=object)
        return pd.DataFrame(
            {
                "row": rows,
                "rank": np.tile(np.arange(1, k + 1), len(shares)),
                "feature": np.asarray(self._feature_names(), dtype=object)[columns],
                "actual": actual_cells[rows, columns],
                "expected": expected_cells[rows, columns],
                "probability": probabilities[rows, columns],
                "error_share": shares[rows, columns],
            }
        )

    def _members(self) -> list[BaseAutoEncoder]:
        return getattr(self, "estimators_", None) or [self.estimator_]

    def _table_errors(self, X: Any) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
        """Per-cell details of a table with a column schema (see ``_tabular.cell_details``),
        combined over the autoencoders as in :meth:`_feature_errors`.

        The expected value of a numeric cell is the autoencoders' mean; that of a
        categorical cell is the category most of them expect (the first one's on a tie),
        and the probability of the actual category is their mean.
        """
        details = [cell_details(member, X) for member in self._members()]
        actual = details[0][0]
        errors = self._combine_errors([errors for _, _, errors, _ in details])
        if len(details) == 1:
            return actual, details[0][1], errors, details[0][3]
        expected = _combine_expected([expected for _, expected, _, _ in details], self.estimator_.schema_)
        probabilities = np.mean([probabilities for *_, probabilities in details], axis=0)
        return actual, expected, errors, probabilities

    def _feature_errors(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return actual values, reconstructions (original units) and per-feature errors,
        each (n_samples, n_features).

        The errors use the loss the model trained with, in its scaled units. Each
        autoencoder's errors are divided by its row of ``feature_error_scales_`` once
        those are set, then averaged over the autoencoders; the reconstruction is their
        mean. For a table with a column schema the first two are DataFrames and missing
        cells have error NaN.
        """
        if _has_schema(self.estimator_):
            return self._table_errors(X)[:3]
        details = [_dense_details(member, X, self.n_features_in_) for member in self._members()]
        actual = details[0][0]
        if len(details) == 1:
            recon = details[0][1]
        else:
            recon = np.mean([recon for _, recon, _ in details], axis=0)
        return actual, recon, self._combine_errors([errors for _, _, errors in details])

    def _member_errors(self, X: Any) -> list[np.ndarray]:
        """Return each autoencoder's per-feature errors of ``X``, not yet divided by any scale."""
        if _has_schema(self.estimator_):
            return [cell_details(member, X)[2] for member in self._members()]
        return [_dense_details(member, X, self.n_features_in_)[2] for member in self._members()]

    def _combine_errors(self, member_errors: list[np.ndarray]) -> np.ndarray:
        """Divide each autoencoder's errors by its scales, once set, and average them."""
        scales = getattr(self, "feature_error_scales_", None)
        if scales is not None:
            member_errors = [errors / row for errors, row in zip(member_errors, scales)]
        if len(member_errors) == 1:
            return member_errors[0]
        return np.mean(member_errors, axis=0)

    def _feature_names(self) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return [str(name) for name in names]
        return [f"x{j}" for j in range(self.n_features_in_)]

    # --- model files ------------------------------------------------------------------

    def export_onnx(self, path: str, X: Any = None, *, opset: int | None = None, strict: bool = True):
        """Export the detector to one ONNX graph with an ``is_anomaly`` output.

        The graph computes the same score as :meth:`reconstruction_error` and compares
        it with ``threshold_``; see :meth:`aekit.AutoEncoder.export_onnx`.
        """
        from ..export import ONNX_OPSET, export_onnx

        check_is_fitted(self, "estimator_")
        return export_onnx(self, path, X, opset=opset or ONNX_OPSET, strict=strict)

    def save(self, path: str) -> None:
        """Write the fitted detector to the folder ``path`` (safetensors weights + JSON).

        The folder holds the autoencoder, the threshold, its rule and the
        calibration errors; ``aekit.load`` restores it with identical outputs.
        """
        from ..serialization import save_estimator

        check_is_fitted(self, "estimator_")
        save_estimator(self, path)

    def _wrapper_state(self) -> dict[str, Any]:
        """Fitted state beside the inner estimator, as JSON-ready values."""
        check_is_fitted(self, "estimator_")
        calibration = self.calibration_errors_
        return {
            "default_estimator": self.estimator is None,
            "seed": int(self.seed_),
            "threshold": _json_float(self.threshold_),
            "threshold_method": self.threshold_method_,
            "feature_error_scales": None if self.feature_error_scales_ is None else [
                [float(v) for v in row] for row in self.feature_error_scales_
            ],
            "training_errors": [float(v) for v in self.training_errors_],
            "calibration_errors": None if calibration is None else [float(v) for v in calibration],
        }

    @classmethod
    def _from_wrapper_state(
        cls,
        params: dict[str, Any],
        state: dict[str, Any],
        estimator: BaseAutoEncoder,
        members: Sequence[BaseAutoEncoder] = (),
    ) -> AnomalyDetector:
        """Rebuild a fitted detector around the fitted autoencoders read from a model
        file: ``estimator`` and the ``members`` trained after it."""
        inner_param = None if state["default_estimator"] else clone(estimator)
        # Files written before n_estimators existed hold one network.
        detector = cls(estimator=inner_param, **{"n_estimators": 1, **params})
        detector.estimators_ = [estimator, *members]
        detector.estimator_ = estimator
        detector.seed_ = int(state["seed"])
        detector.n_features_in_ = estimator.n_features_in_
        if hasattr(estimator, "feature_names_in_"):
            detector.feature_names_in_ = estimator.feature_names_in_
        # float32 errors survive the trip through JSON's float64 exactly.
        detector.training_errors_ = np.asarray(state["training_errors"], dtype=np.float32)
        calibration = state["calibration_errors"]
        detector.calibration_errors_ = None if calibration is None else np.asarray(calibration, dtype=np.float32)
        scales = state["feature_error_scales"]
        if scales is not None:
            # Older files hold one row of scales, as a flat list.
            scales = np.asarray(scales, dtype=np.float64).reshape(len(detector.estimators_), -1)
        detector.feature_error_scales_ = scales
        detector.threshold_ = float(state["threshold"])
        detector.threshold_method_ = str(state["threshold_method"])
        detector.offset_ = -detector.threshold_
        return detector


def _dense_details(estimator: BaseAutoEncoder, X: Any, n_features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return one autoencoder's actual values, reconstructions (original units) and
    per-feature errors (its training loss, in its scaled units), each (n_samples, n_features)."""
    recon = estimator.reconstruct(X).reshape(-1, n_features)
    if isinstance(X, pd.DataFrame):
        X = estimator._align_columns(X)
    actual = to_float_array(X)[0].reshape(len(recon), -1)

    scaler = estimator.scaler_
    x_scaled = scaler.transform(actual).astype(np.float64)
    recon_scaled = scaler.transform(recon).astype(np.float64)
    if getattr(estimator, "loss", "mse") == "bce":
        target = np.clip(x_scaled, 0, 1)
        recon_scaled = np.clip(recon_scaled, 1e-7, 1 - 1e-7)
        errors = -(target * np.log(recon_scaled) + (1 - target) * np.log1p(-recon_scaled))
    else:
        errors = np.square(recon_scaled - x_scaled)
    return actual, recon, errors


def _combine_expected(frames: list[pd.DataFrame], schema: Any) -> pd.DataFrame:
    """Combine the autoencoders' expected tables: the mean of each numeric cell, and the
    category most of them expect for a categorical cell (the first one's on a tie)."""
    combined = {}
    for column in schema.columns:
        values = [frame[column.name] for frame in frames]
        if column.kind == NUMERIC:
            mean = np.mean([series.to_numpy(dtype=np.float64) for series in values], axis=0)
            combined[column.name] = restore_numeric_dtype(mean, column.dtype)
            continue
        labels = np.stack([series.to_numpy(dtype=object) for series in values])  # (members, rows)
        votes = np.stack([(labels == row).sum(axis=0) for row in labels])
        chosen = votes.argmax(axis=0)  # the first of the most voted, so ties go to the first network
        picked = labels[chosen, np.arange(labels.shape[1])]
        combined[column.name] = pd.Series(picked, dtype=values[0].dtype)
    return pd.DataFrame(combined)


def _error_scales(feature_errors: np.ndarray) -> np.ndarray:
    """Median of each feature's error over rows, floored at a share of their mean.

    Missing cells (NaN errors) are left out; a column missing in every row gets the floor.
    """
    if np.isnan(feature_errors).any():
        present = ~np.isnan(feature_errors).all(axis=0)
        medians = np.zeros(feature_errors.shape[1])
        medians[present] = np.nanmedian(feature_errors[:, present], axis=0)
    else:
        medians = np.median(feature_errors, axis=0)
    floor = MIN_RELATIVE_ERROR_SCALE * float(np.mean(medians))
    # An all-zero error (a model that reconstructs every row exactly) keeps scale 1.
    return np.maximum(medians, floor) if floor > 0 else np.ones_like(medians)


def _mean_present(errors: np.ndarray) -> np.ndarray:
    """Mean of each row's errors over its present (non-NaN) cells; 0 for a row with none."""
    present = ~np.isnan(errors)
    totals = np.where(present, errors, 0.0).sum(axis=1)
    return totals / np.maximum(present.sum(axis=1), 1)


def _has_schema(estimator: Any) -> bool:
    return getattr(estimator, "schema_", None) is not None


def _take_rows(X: Any, rows: np.ndarray) -> Any:
    """Select rows of a DataFrame (keeping its column names) or of an array."""
    if isinstance(X, pd.DataFrame):
        return X.iloc[rows]
    return np.asarray(X)[rows]


def _json_float(value: float) -> float | str:
    """JSON has no infinity; store it as the string "inf"."""
    return "inf" if math.isinf(value) else float(value)
