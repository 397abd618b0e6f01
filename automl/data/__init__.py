"""Data loaders: every source becomes one ``Dataset`` (splits, task, spec, preprocessing)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automl.errors import DataError

__all__ = ["DataSpec", "Dataset", "adapt_input", "load_dataset", "register_adapter", "register_loader"]


@dataclass(frozen=True)
class DataSpec:
    """What a family builder needs to know about its input and output."""

    kind: str  # "table", "image", "sequence", "text", "series", ...
    task: str  # "classification" or "regression"
    input_shape: tuple[int, ...]
    n_classes: int | None = None
    output_dim: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    """Encoded splits for training, plus what it takes to export a model that takes raw inputs."""

    name: str
    spec: DataSpec
    x_train: Any
    y_train: np.ndarray
    x_val: Any
    y_val: np.ndarray
    x_test: Any
    y_test: np.ndarray
    raw_test: Any
    raw_example: Any
    make_preprocessor: Callable[[], Any]
    metadata: dict[str, Any]
    description: dict[str, Any]
    classes: list[Any] | None = None
    y_scale: tuple[float, float] | None = None

    @property
    def task(self) -> str:
        return self.spec.task


Loader = Callable[..., Dataset]
Adapter = Callable[[dict[str, Any], Any], Any]
_LOADERS: list[tuple[Callable[[str], bool], Loader]] = []
_ADAPTERS: dict[str, Adapter] = {}


def register_loader(matches: Callable[[str], bool]) -> Callable[[Loader], Loader]:
    """Register a loader for the ``--data`` values that ``matches`` accepts."""

    def decorate(loader: Loader) -> Loader:
        _LOADERS.append((matches, loader))
        return loader

    return decorate


def register_adapter(kind: str) -> Callable[[Adapter], Adapter]:
    """Register how raw user input of one data kind becomes the exported model's input."""

    def decorate(adapter: Adapter) -> Adapter:
        _ADAPTERS[kind] = adapter
        return adapter

    return decorate


def _ensure_registered() -> None:
    import importlib
    import pkgutil

    # registration side effects, in match order (the first loader that accepts a source wins): ``routing`` sends a
    # CSV to the text, series or table loader by the options, so it must come before the plain table loader
    # ``generative`` sees every source first: it hands what is not a family's own task on to the next loader
    known = ("generative", "routing")
    generic = ("arrays", "images", "sequences", "text", "series", "demo", "tabular", "ratings", "memory")
    # any other module here (a new data kind's loader, demos) matches before the generic loaders: no list to edit
    present = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    modules = (*known, *(m for m in present if m not in known + generic), *generic)
    for module in modules:
        importlib.import_module(f"automl.data.{module}")
    # a module imported earlier from elsewhere registered out of turn: restore this order (stable sort; loaders
    # registered by other packages stay in front of the built-in ones)
    rank = {f"automl.data.{module}": i for i, module in enumerate(modules)}
    _LOADERS.sort(key=lambda entry: rank.get(entry[1].__module__, -1))


def load_dataset(source: str, **options: Any) -> Dataset:
    """Load ``--data SOURCE``: ``demo:NAME``, a CSV or a Parquet file."""
    _ensure_registered()
    for matches, loader in _LOADERS:
        if matches(source):
            return loader(source, **options)
    if not source.startswith("demo:") and not Path(source).exists():
        raise DataError(f"{source}: data file not found")
    raise DataError(f"{source}: unsupported data source (use a .csv or .parquet file, or demo:NAME)")


def adapt_input(metadata: dict[str, Any], raw: Any) -> Any:
    """Turn raw user input (a DataFrame, arrays, ...) into the exported Keras model's input."""
    _ensure_registered()
    kind = metadata["kind"]
    if kind not in _ADAPTERS:
        raise DataError(f"no input adapter for data kind '{kind}'")
    return _ADAPTERS[kind](metadata, raw)


def content_hash(*arrays: Any) -> str:
    """A stable sha256 over the bytes of the given arrays or frames."""
    digest = hashlib.sha256()
    for array in arrays:
        if hasattr(array, "to_numpy"):
            digest.update(",".join(map(str, getattr(array, "columns", []))).encode())
            array = array.to_numpy()
        arr = np.asarray(array)
        digest.update(arr.astype(str).tobytes() if arr.dtype == object else np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def predict_inputs(model: Any, inputs: Any, batch_size: int = 4096) -> np.ndarray:
    """Run a Keras model over numpy inputs; string inputs (TensorFlow only) are passed as tensors."""
    leaves = list(inputs.values()) if isinstance(inputs, dict) else [inputs]
    if not any(np.asarray(leaf).dtype.kind in "OUS" for leaf in leaves):
        return np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0))
    import tensorflow as tf

    n = len(leaves[0])
    outputs = []
    for start in range(0, n, batch_size):
        if isinstance(inputs, dict):
            batch = {k: tf.constant(np.asarray(v[start : start + batch_size])) for k, v in inputs.items()}
        else:
            batch = tf.constant(np.asarray(inputs[start : start + batch_size]))
        outputs.append(np.asarray(model(batch, training=False)))
    return np.concatenate(outputs, axis=0)
