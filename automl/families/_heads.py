"""Output heads shared by the families: softmax over classes, or linear outputs for regression."""

from __future__ import annotations

from typing import Any

import keras

from automl.data import DataSpec


def output_head(x: Any, spec: DataSpec) -> Any:
    """Probabilities for classification, one linear unit per output for regression."""
    if spec.task == "classification":
        return keras.layers.Dense(spec.n_classes, activation="softmax", dtype="float32", name="output")(x)
    return keras.layers.Dense(spec.output_dim, dtype="float32", name="output")(x)
