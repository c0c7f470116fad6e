"""The linear baseline an autoencoder has to beat: PCA with as many components as the code."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA


def pca_reconstruction_mse(
    X_train: np.ndarray,
    X_eval: dict[str, np.ndarray],
    n_components: int,
    *,
    random_state: int = 0,
) -> tuple[int, dict[str, float]]:
    """Fit PCA on ``X_train`` and return each evaluation set's reconstruction MSE.

    ``n_components`` is clipped to what the training rows allow (at most
    ``min(n_samples, n_features)``); the first value returned is the number used.
    The MSE is the mean over every sample and feature, in the units of ``X_train``.
    """
    n_used = int(min(n_components, X_train.shape[0], X_train.shape[1]))
    pca = PCA(n_components=n_used, random_state=random_state).fit(X_train)

    errors = {}
    for name, X in X_eval.items():
        reconstructed = pca.inverse_transform(pca.transform(X))
        errors[name] = float(np.mean((reconstructed - X) ** 2, dtype=np.float64))
    return n_used, errors
