"""Convolutional network on images: conv blocks, pooling, a dense head, searched data augmentation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from automl.data import DataSpec
from automl.families import Family
from automl.families._augment import augment, regularizer, spatial_size
from automl.families._heads import output_head

MAX_FILTERS = 512
# Keras' 0.99 (even 0.9) leaves the moving statistics far behind the weights in the few steps of a short trial on
# small data: validation accuracy then reads near chance while training accuracy is high, and the pruner kills the
# trial. Inference needs the statistics of recent batches here.
BN_MOMENTUM = 0.5
POOLING = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}
HEAD_POOLING = {"global_avg": keras.layers.GlobalAveragePooling2D, "global_max": keras.layers.GlobalMaxPooling2D}


def block_filters(filters: int, growth: float, n_blocks: int) -> list[int]:
    """Filters per block: ``filters * growth**i``, capped at ``MAX_FILTERS``."""
    return [min(MAX_FILTERS, round(filters * growth**i)) for i in range(n_blocks)]


def conv_block(x: Any, index: int, filters: int, params: Mapping[str, Any]) -> Any:
    """[Conv -> BatchNorm? -> activation] x convs_per_block -> 2x2 pooling (while >= 2 px) -> Dropout?"""
    batch_norm = bool(params.get("batch_norm"))
    for j in range(int(params.get("convs_per_block", 1))):
        x = keras.layers.Conv2D(
            filters,
            int(params.get("kernel_size", 3)),
            padding="same",
            use_bias=not batch_norm,
            kernel_regularizer=regularizer(params),
            name=f"block{index}_conv{j}",
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{index}_bn{j}")(x)
        x = keras.layers.Activation(params.get("activation", "relu"), name=f"block{index}_act{j}")(x)
    if spatial_size(x) >= 2:
        x = POOLING[params.get("pooling", "max")](2, name=f"block{index}_pool")(x)
    if params.get("dropout", 0.0) > 0:
        x = keras.layers.Dropout(params["dropout"], name=f"block{index}_dropout")(x)
    return x


def build_model(params: Mapping[str, Any], spec: DataSpec) -> keras.Model:
    """Augmentation -> conv blocks -> global pooling or flatten -> dense head -> task head."""
    inputs = keras.Input(shape=spec.input_shape, name="image")
    x = augment(inputs, params)
    widths = block_filters(int(params["filters"]), float(params.get("filter_growth", 2.0)), int(params["n_blocks"]))
    for i, filters in enumerate(widths):
        x = conv_block(x, i, filters, params)
    head = params.get("head_pooling", "global_avg")
    x = keras.layers.Flatten(name="flatten")(x) if head == "flatten" else HEAD_POOLING[head](name="pool")(x)
    for i in range(int(params.get("dense_layers", 0))):
        x = keras.layers.Dense(
            int(params["dense_units"]),
            activation=params.get("activation", "relu"),
            kernel_regularizer=regularizer(params),
            name=f"dense_{i}",
        )(x)
    if params.get("head_dropout", 0.0) > 0:
        x = keras.layers.Dropout(params["head_dropout"], name="head_dropout")(x)
    return keras.Model(inputs, output_head(x, spec), name="cnn")


FAMILY = Family(
    name="cnn",
    build=build_model,
    data_kinds=frozenset({"image"}),
    description="Convolutional network: conv blocks, filters and growth, kernel, pooling, head, data augmentation.",
)
