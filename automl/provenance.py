"""What makes a trial reproducible: package versions, space and data hashes, and how its kernels ran."""

from __future__ import annotations

import platform
from importlib import metadata as importlib_metadata

VERSION_TAG = "automl.version."
SPACE_TAG, DATA_TAG = "automl.space_sha256", "automl.data_sha256"
VERSION_PACKAGES = ("keras", "tensorflow", "jax", "torch", "optuna", "numpy", "scikit-learn", "pandas", "mlflow")


def package_versions() -> dict[str, str]:
    """Versions that decide whether a retrain can match: Python, automl, Keras and its backend, Optuna, numpy."""
    import keras

    import automl

    versions = {
        "python": platform.python_version(),
        "automl": automl.__version__,
        "keras_backend": keras.backend.backend(),
    }
    for name in VERSION_PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def provenance_tags(space_sha256: str, data_sha256: str) -> dict[str, str]:
    """MLflow tags that make a trial run reproducible: the space and data hashes plus package versions."""
    tags = {SPACE_TAG: space_sha256, DATA_TAG: data_sha256}
    tags.update({f"{VERSION_TAG}{name}": version for name, version in package_versions().items()})
    return tags
