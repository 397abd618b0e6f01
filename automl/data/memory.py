"""Arrays handed over in memory (``automl.Tuner.search(x, y, ...)``): fed to the model as they are.

The caller owns preprocessing, as under KerasTuner: the exported model takes the same arrays ``fit`` took.
Labels are class indices or one-hot rows (classification), or floats (regression). ``tf.data`` datasets of
``(x, y)`` batches are read into arrays once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from automl.data import Dataset, DataSpec, content_hash, register_adapter
from automl.errors import DataError

RAW_EXAMPLES = 5


def as_arrays(x: Any, y: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` arrays from arrays, or from a dataset of ``(x, y)`` batches when ``y`` is None."""
    if y is None and x is not None and hasattr(x, "as_numpy_iterator"):
        xs, ys = [], []
        for batch in x.as_numpy_iterator():
            if not isinstance(batch, tuple) or len(batch) < 2:
                raise DataError(f"{what}: a dataset must yield (x, y) batches")
            xs.append(np.asarray(batch[0]))
            ys.append(np.asarray(batch[1]))
        if not xs:
            raise DataError(f"{what}: the dataset is empty")
        return (np.concatenate(xs), np.concatenate(ys)) if _batched(x) else (np.stack(xs), np.stack(ys))
    if y is None:
        raise DataError(f"{what}: y is missing (pass x and y arrays, or a dataset of (x, y) batches)")
    if isinstance(x, dict | list | tuple):
        raise DataError(f"{what}: models with several inputs are not supported; pass one x array")
    x_arr, y_arr = np.asarray(x), np.asarray(y)
    if len(x_arr) != len(y_arr):
        raise DataError(f"{what}: x has {len(x_arr)} rows but y has {len(y_arr)}; they must match")
    return x_arr, y_arr


def _batched(dataset: Any) -> bool:
    """Whether a ``tf.data`` dataset yields batches (its leading dimension is unknown, or it was batched)."""
    spec = getattr(dataset, "element_spec", None)
    first = spec[0] if isinstance(spec, tuple) else None
    shape = getattr(first, "shape", None)
    if shape is not None and len(shape) > 0 and shape[0] is None:
        return True
    return "Batch" in type(dataset).__name__


def infer_task(y: np.ndarray) -> str:
    """Class indices (integers, booleans) or one-hot rows are classification; floats are regression."""
    if y.dtype.kind in "iub":
        return "classification"
    if y.ndim == 2 and y.shape[1] > 1 and np.isin(y, (0.0, 1.0)).all() and np.allclose(y.sum(axis=1), 1.0):
        return "classification"
    return "regression"


def _labels(y: np.ndarray, what: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1).astype("int64")  # one-hot rows; a categorical loss gets them back one-hot
    labels = y.reshape(-1)
    if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
        raise DataError(f"{what}: class labels must be whole numbers")
    if labels.size and labels.min() < 0:
        raise DataError(f"{what}: class labels must be 0 or more (got {labels.min()})")
    return labels.astype("int64")


def array_dataset(
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    name: str = "arrays",
    task: str | None = None,
) -> Dataset:
    """A ``Dataset`` of in-memory arrays; the validation arrays double as the test split (there is no other)."""
    for label, values in (("x", x), ("validation x", x_val)):
        if values.dtype.kind not in "fiub":
            raise DataError(f"{name}: {label} must hold numbers (got dtype {values.dtype})")
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise DataError(f"{name}: {label} holds NaN or Inf values; clean them before the search")
    if x.shape[1:] != x_val.shape[1:]:
        raise DataError(f"{name}: x rows have shape {x.shape[1:]} but validation rows {x_val.shape[1:]}")
    if len(x) == 0 or len(x_val) == 0:
        raise DataError(f"{name}: training and validation data must each hold at least one row")
    task = task or infer_task(y)
    classes: list[Any] | None = None
    if task == "classification":
        y, y_val = _labels(y, name), _labels(y_val, name)
        n_classes = int(max(y.max(), y_val.max())) + 1
        classes = list(range(n_classes))
    else:
        y, y_val = y.astype("float32"), y_val.astype("float32")
        if not (np.isfinite(y).all() and np.isfinite(y_val).all()):
            raise DataError(f"{name}: y holds NaN or Inf values; clean them before the search")
        n_classes = 0
    x, x_val = x.astype("float32"), x_val.astype("float32")
    shape = tuple(int(d) for d in x.shape[1:])
    output_dim = 1 if task == "classification" or y.ndim == 1 else int(np.prod(y.shape[1:]))
    spec = DataSpec(kind="array", task=task, input_shape=shape, n_classes=n_classes or None, output_dim=output_dim)
    metadata: dict[str, Any] = {"kind": "array", "task": task, "classes": classes, "input_shape": list(shape)}

    def make_preprocessor() -> Any:
        import keras

        inputs = keras.Input(shape=shape, name="inputs", dtype="float32")
        return keras.Model(inputs, keras.layers.Identity(name="as_given")(inputs), name="preprocess")

    description = {
        "name": name,
        "kind": "array",
        "input_shape": list(shape),
        "task": task,
        "classes": classes,
        "splits": {"train": len(x), "val": len(x_val), "test": len(x_val)},
        "test_split": "validation",
        "sha256": content_hash(x, y, x_val, y_val),
    }
    return Dataset(
        name=name,
        spec=spec,
        x_train=x,
        y_train=y,
        x_val=x_val,
        y_val=y_val,
        x_test=x_val,
        y_test=y_val,
        raw_test=x_val,
        raw_example=x[:RAW_EXAMPLES],
        make_preprocessor=make_preprocessor,
        metadata=metadata,
        description=description,
        classes=classes,
        y_scale=None,
    )


@register_adapter("array")
def arrays_to_inputs(metadata: dict[str, Any], raw: Any) -> np.ndarray:
    """Rows shaped like the training ``x`` (a DataFrame's values, or one row, are accepted too)."""
    shape = tuple(int(d) for d in metadata["input_shape"])
    x = np.asarray(raw.to_numpy() if hasattr(raw, "to_numpy") else raw, dtype="float32")
    if x.shape == shape:
        x = x[None]
    if x.shape[1:] != shape:
        raise DataError(f"array input: expected rows of shape {shape} (got {x.shape})")
    return x
