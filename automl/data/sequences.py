"""Sequence classification (or regression) from arrays of shape (N, T, F); ``demo:sequence-waves``.

Per-feature normalization, with statistics from the training split only, lives in the preprocessor, so the
exported model takes raw (N, T, F) arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from automl.data import Dataset, DataSpec, content_hash, predict_inputs, register_adapter
from automl.data._common import encode_target, split_indices
from automl.data.demo import register_demo
from automl.errors import DataError

RAW_EXAMPLES = 5


def sequence_dataset(
    x: np.ndarray,
    labels: np.ndarray,
    name: str,
    source: str,
    task: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    **_: Any,
) -> Dataset:
    """Build a ``Dataset`` from raw sequences (N, T, F) and one label per sequence."""
    if x.ndim != 3:
        raise DataError(f"{source}: sequences must have shape (N, T, F) (got {x.shape})")
    raw = x.astype("float32")
    if not np.isfinite(raw).all():
        raise DataError(f"{source}: x has {int((~np.isfinite(raw)).sum())} NaN or infinite value(s)")
    task, y_all, classes = encode_target(labels, source, "y", task)
    train, val, test = split_indices(y_all, task, source, seed, val_fraction, test_fraction)
    steps, features = int(raw.shape[1]), int(raw.shape[2])
    flat = raw[train].reshape(-1, features)
    mean, variance = flat.mean(axis=0), flat.var(axis=0)
    metadata: dict[str, Any] = {
        "kind": "sequence",
        "task": task,
        "classes": classes,
        "steps": steps,
        "features": features,
    }

    def make_preprocessor() -> Any:
        return build_preprocessor((steps, features), mean, variance)

    preprocessor = make_preprocessor()

    def encode(rows: np.ndarray) -> np.ndarray:
        return predict_inputs(preprocessor, raw[rows]).astype("float32")

    y_scale = (float(y_all[train].mean()), float(y_all[train].std() or 1.0)) if task == "regression" else None
    description = {
        "name": name,
        "kind": "sequence",
        "sequences": len(raw),
        "steps": steps,
        "features": features,
        "task": task,
        "classes": classes,
        "splits": {"train": len(train), "val": len(val), "test": len(test)},
        "seed": seed,
        "sha256": content_hash(raw, np.asarray(labels).astype(str)),
    }
    return Dataset(
        name=name,
        spec=DataSpec(
            kind="sequence", task=task, input_shape=(steps, features), n_classes=len(classes) if classes else None
        ),
        x_train=encode(train),
        y_train=y_all[train],
        x_val=encode(val),
        y_val=y_all[val],
        x_test=encode(test),
        y_test=y_all[test],
        raw_test=raw[test],
        raw_example=raw[train[:RAW_EXAMPLES]],
        make_preprocessor=make_preprocessor,
        metadata=metadata,
        description=description,
        classes=classes,
        y_scale=y_scale,
    )


def build_preprocessor(shape: tuple[int, ...], mean: np.ndarray, variance: np.ndarray) -> Any:
    """Raw steps -> per-feature standardized steps (statistics of the training split)."""
    import keras

    steps = keras.Input(shape=shape, name="steps", dtype="float32")
    normalized = keras.layers.Normalization(mean=mean, variance=variance, name="normalize")(steps)
    return keras.Model(steps, normalized, name="preprocess")


@register_adapter("sequence")
def sequences_to_inputs(metadata: dict[str, Any], raw: Any) -> np.ndarray:
    """Raw (N, T, F) arrays; one (T, F) sequence, or (N, T) when there is one feature, are accepted too."""
    steps, features = int(metadata["steps"]), int(metadata["features"])
    x = np.asarray(raw, dtype="float32")
    if x.ndim == 2:
        x = x[None] if x.shape == (steps, features) else x[..., None]
    if x.ndim != 3 or x.shape[1:] != (steps, features):
        raise DataError(f"sequence input: expected shape (N, {steps}, {features}) (got {x.shape})")
    return x


@register_demo("sequence-waves")
def sequence_waves(seed: int = 0, n: int = 600, steps: int = 32, **options: Any) -> Dataset:
    """Noisy sine, square and sawtooth waves of random frequency and phase: (N, 32, 1), 3 classes."""
    rng = np.random.default_rng(1234)  # the data stay the same whatever the search seed
    t = np.arange(steps, dtype="float64")
    kinds = np.array(["sine", "square", "sawtooth"])
    labels = kinds[rng.integers(0, 3, size=n)]
    freq = rng.uniform(0.03, 0.12, size=(n, 1))
    phase = rng.uniform(0, 1, size=(n, 1))
    cycles = freq * t + phase
    sine = np.sin(2 * np.pi * cycles)
    waves = np.where(
        labels[:, None] == "sine", sine, np.where(labels[:, None] == "square", np.sign(sine), 2 * (cycles % 1) - 1)
    )
    x = waves + rng.normal(scale=0.3, size=waves.shape)
    options.pop("target", None)
    return sequence_dataset(x[..., None], labels, "demo:sequence-waves", "demo:sequence-waves", seed=seed, **options)
