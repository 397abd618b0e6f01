"""automl: Keras 3 hyperparameter search on Optuna, tracked in MLflow, best model in the registry.

Importing this package is cheap; TensorFlow/Keras, Optuna and MLflow load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from automl.config import SearchConfig, Store, resolve_store
from automl.errors import AutoMLError, DataError, SpaceError, StoreError

if TYPE_CHECKING:
    from automl.runner import SearchResult
    from automl.tuner import Tuner

__version__ = "0.1.0"
__all__ = [
    "AutoMLError",
    "DataError",
    "SearchConfig",
    "SearchResult",
    "SpaceError",
    "Store",
    "StoreError",
    "Tuner",
    "load_model",
    "predict",
    "resolve_store",
    "resume",
    "search",
]


def __getattr__(name: str) -> Any:
    if name == "Tuner":  # KerasTuner's tuner API; loaded on first use
        from automl.tuner import Tuner

        return Tuner
    raise AttributeError(f"module 'automl' has no attribute '{name}'")


def search(data: str, family: str = "mlp", *, progress: Any = None, **options: Any) -> SearchResult:
    """Run a search; ``options`` are the fields of ``SearchConfig`` (target, trials, epochs, study, ...)."""
    from automl.runner import search as run_search

    return run_search(SearchConfig(data=data, family=family, **options), progress)


def resume(study: str, *, progress: Any = None, **options: Any) -> SearchResult:
    """Continue a study to the budget its last search asked for (or ``trials=N`` more)."""
    from automl.runner import resume as run_resume

    return run_resume(study, progress=progress, **options)


def load_model(uri: str, home: str | None = None, tracking_uri: str | None = None) -> Any:
    """The Keras model (preprocessing inside) behind a model URI, or a ``.keras`` file, with safe_mode on."""
    if uri.endswith(".keras") and "://" not in uri and not uri.startswith("models:"):
        from automl.export import load_keras_file

        return load_keras_file(uri)
    from automl.tracking import load_pyfunc

    store = resolve_store(home, tracking_uri)
    return load_pyfunc(uri, store.tracking_uri).unwrap_python_model().keras_model


def predict(uri: str, data: Any, home: str | None = None, tracking_uri: str | None = None) -> Any:
    """Predictions of a registered model on raw inputs (a DataFrame of feature columns)."""
    from automl.tracking import load_pyfunc

    store = resolve_store(home, tracking_uri)
    return load_pyfunc(uri, store.tracking_uri).predict(data)
