"""Sample quality in a fixed feature space: a small network fitted once per data set, and the Frechet distance.

The feature space is fitted with scikit-learn (deterministic, nothing downloaded) on the real training split: a
whitened PCA encoder, plus the hidden ReLU units of a one-hidden-layer classifier when labels exist. It is cached
per data set (a hash of the training split) for the life of the process, so every trial scores alike.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable

import numpy as np

FEATURE_UNITS = 64
PCA_COMPONENTS = 32
_CACHE: dict[str, Callable[[np.ndarray], np.ndarray]] = {}

Features = Callable[[np.ndarray], np.ndarray]


def feature_space(x_train: np.ndarray, y_train: np.ndarray | None = None) -> Features:
    """``x -> features`` fitted on the real training split (cached by the split's content)."""
    x = np.asarray(x_train, dtype="float32").reshape(len(x_train), -1)
    labeled = y_train is not None and len(np.unique(y_train)) > 1
    digest = hashlib.sha256(x.tobytes())
    if labeled:
        digest.update(np.asarray(y_train).astype("int64").tobytes())
    key = digest.hexdigest()
    if key not in _CACHE:
        _CACHE[key] = _fit_features(x, np.asarray(y_train) if labeled else None)
    return _CACHE[key]


def _fit_features(x: np.ndarray, y: np.ndarray | None) -> Features:
    """Whitened PCA coordinates (structure), plus a small classifier's hidden ReLU units when labels exist."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=min(PCA_COMPONENTS, x.shape[1], len(x)), whiten=True, random_state=0).fit(x)
    if y is None:
        return lambda data: pca.transform(_flat(data))
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        net = MLPClassifier(hidden_layer_sizes=(FEATURE_UNITS,), max_iter=200, random_state=0).fit(x, y)
    weights, bias = net.coefs_[0], net.intercepts_[0]
    return lambda data: np.hstack([np.maximum(_flat(data) @ weights + bias, 0.0), pca.transform(_flat(data))])


def _flat(data: np.ndarray) -> np.ndarray:
    return np.asarray(data, dtype="float32").reshape(len(data), -1)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets: |mu_a - mu_b|^2 + Tr(Sa + Sb - 2 (Sa Sb)^1/2)."""
    from scipy import linalg

    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a singular product (collapsed samples) still has a usable root
        root = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():
            offset = np.eye(len(cov_a)) * 1e-6
            root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2.0 * np.real(root)))
    return max(value, 0.0)


def sample_score(features: Features, samples: np.ndarray, reference: np.ndarray) -> float:
    """Frechet distance of ``samples`` to real ``reference`` rows in the feature space (lower is better)."""
    return frechet_distance(features(samples), features(reference))


def image_grid(images: np.ndarray, columns: int = 8) -> np.ndarray:
    """(N, H, W, C) images in [0, 1] -> one (rows*H, columns*W, C) grid with 1-pixel gaps."""
    images = np.clip(np.asarray(images, dtype="float32"), 0.0, 1.0)
    n, height, width, channels = images.shape
    rows = -(-n // columns)
    grid = np.ones((rows * (height + 1) - 1, columns * (width + 1) - 1, channels), dtype="float32")
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * (height + 1) : r * (height + 1) + height, c * (width + 1) : c * (width + 1) + width] = image
    return grid
