"""Multi-layer perceptron on a flat feature vector."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from automl.data import DataSpec
from automl.families import Family
from automl.families._heads import output_head


def hidden_widths(units: int, n_layers: int, shape: str) -> list[int]:
    """Layer widths: constant, or a funnel that halves per layer (never below 8)."""
    if shape == "funnel":
        return [max(8, units // (2**i)) for i in range(n_layers)]
    return [units] * n_layers


def build_model(params: Mapping[str, Any], spec: DataSpec) -> keras.Model:
    """Dense stack: [Dense -> BatchNorm? -> activation -> Dropout?] x n_layers -> task head."""
    inputs = keras.Input(shape=spec.input_shape, name="features")
    x = inputs if len(spec.input_shape) == 1 else keras.layers.Flatten()(inputs)
    regularizer = keras.regularizers.L2(params["l2"]) if params.get("l2") else None
    for i, width in enumerate(
        hidden_widths(params["units"], params["n_layers"], params.get("width_shape", "constant"))
    ):
        x = keras.layers.Dense(width, kernel_regularizer=regularizer, name=f"dense_{i}")(x)
        if params.get("batch_norm"):
            x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
        x = keras.layers.Activation(params.get("activation", "relu"), name=f"act_{i}")(x)
        if params.get("dropout", 0.0) > 0:
            x = keras.layers.Dropout(params["dropout"], name=f"dropout_{i}")(x)
    return keras.Model(inputs, output_head(x, spec), name="mlp")


FAMILY = Family(
    name="mlp",
    build=build_model,
    data_kinds=frozenset({"table", "image", "sequence"}),
    description="Fully connected network: depth, width and its shape, activation, dropout, L2, batch norm.",
)
