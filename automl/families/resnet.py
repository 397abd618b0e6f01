"""Residual networks on images: one generic builder; v1/v2 and basic/bottleneck are thin variants of it.

Shaped like ``keras/src/applications/resnet.py``: ``resnet()`` takes a stem and a ``stack_fn``; the variants
only pick the residual block. Downsampling stops once a feature map is 1 pixel, so tiny images (8x8) work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import keras

from automl.data import DataSpec
from automl.families import Family
from automl.families._augment import augment, regularizer, spatial_size
from automl.families._heads import output_head

MAX_WIDTH = 256
BOTTLENECK_EXPANSION = 4
BN_EPSILON = 1.001e-5
# Keras' 0.99 (even 0.9) leaves the moving statistics far behind the weights in the few steps of a short trial on
# small data: validation accuracy then reads near chance while training accuracy is high, and the pruner kills the
# trial. Inference needs the statistics of recent batches here.
BN_MOMENTUM = 0.5


@dataclass(frozen=True)
class Layers:
    """The per-model choices every block shares: activation and kernel penalty."""

    activation: str
    l2: Any

    def conv(self, filters: int, kernel: int, name: str, strides: int = 1, use_bias: bool = False) -> Any:
        return keras.layers.Conv2D(
            filters, kernel, strides=strides, padding="same", use_bias=use_bias, kernel_regularizer=self.l2, name=name
        )

    def bn_act(self, x: Any, name: str, act: bool = True) -> Any:
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
        return keras.layers.Activation(self.activation, name=f"{name}_act")(x) if act else x


BlockFn = Callable[[Any, int, int, str, Layers], Any]


def _shortcut(x: Any, out_channels: int, stride: int, name: str, ly: Layers, bn: bool) -> Any:
    """Identity, or a strided 1x1 projection when the shape changes."""
    if stride == 1 and x.shape[-1] == out_channels:
        return x
    shortcut = ly.conv(out_channels, 1, f"{name}_proj", strides=stride)(x)
    return ly.bn_act(shortcut, f"{name}_proj", act=False) if bn else shortcut


def basic_v1(x: Any, width: int, stride: int, name: str, ly: Layers) -> Any:
    """conv3x3 -> BN -> act -> conv3x3 -> BN, + shortcut, -> act."""
    shortcut = _shortcut(x, width, stride, name, ly, bn=True)
    h = ly.bn_act(ly.conv(width, 3, f"{name}_1_conv", strides=stride)(x), f"{name}_1")
    h = ly.bn_act(ly.conv(width, 3, f"{name}_2_conv")(h), f"{name}_2", act=False)
    h = keras.layers.Add(name=f"{name}_add")([shortcut, h])
    return keras.layers.Activation(ly.activation, name=f"{name}_out")(h)


def bottleneck_v1(x: Any, width: int, stride: int, name: str, ly: Layers) -> Any:
    """1x1 -> 3x3 (strided) -> 1x1 (x4 channels), BN+act between, + shortcut, -> act."""
    out = width * BOTTLENECK_EXPANSION
    shortcut = _shortcut(x, out, stride, name, ly, bn=True)
    h = ly.bn_act(ly.conv(width, 1, f"{name}_1_conv")(x), f"{name}_1")
    h = ly.bn_act(ly.conv(width, 3, f"{name}_2_conv", strides=stride)(h), f"{name}_2")
    h = ly.bn_act(ly.conv(out, 1, f"{name}_3_conv")(h), f"{name}_3", act=False)
    h = keras.layers.Add(name=f"{name}_add")([shortcut, h])
    return keras.layers.Activation(ly.activation, name=f"{name}_out")(h)


def basic_v2(x: Any, width: int, stride: int, name: str, ly: Layers) -> Any:
    """Pre-activation: BN -> act -> conv3x3 -> BN -> act -> conv3x3, + shortcut."""
    pre = ly.bn_act(x, f"{name}_pre")
    shortcut = _shortcut(pre, width, stride, name, ly, bn=False) if _changes(x, width, stride) else x
    h = ly.bn_act(ly.conv(width, 3, f"{name}_1_conv", strides=stride)(pre), f"{name}_1")
    h = ly.conv(width, 3, f"{name}_2_conv")(h)
    return keras.layers.Add(name=f"{name}_out")([shortcut, h])


def bottleneck_v2(x: Any, width: int, stride: int, name: str, ly: Layers) -> Any:
    """Pre-activation bottleneck: BN -> act -> 1x1 -> BN -> act -> 3x3 -> BN -> act -> 1x1, + shortcut."""
    out = width * BOTTLENECK_EXPANSION
    pre = ly.bn_act(x, f"{name}_pre")
    shortcut = _shortcut(pre, out, stride, name, ly, bn=False) if _changes(x, out, stride) else x
    h = ly.bn_act(ly.conv(width, 1, f"{name}_1_conv")(pre), f"{name}_1")
    h = ly.bn_act(ly.conv(width, 3, f"{name}_2_conv", strides=stride)(h), f"{name}_2")
    h = ly.conv(out, 1, f"{name}_3_conv", use_bias=True)(h)
    return keras.layers.Add(name=f"{name}_out")([shortcut, h])


def _changes(x: Any, out_channels: int, stride: int) -> bool:
    return stride != 1 or x.shape[-1] != out_channels


BLOCKS: dict[tuple[str, str], BlockFn] = {
    ("basic", "v1"): basic_v1,
    ("bottleneck", "v1"): bottleneck_v1,
    ("basic", "v2"): basic_v2,
    ("bottleneck", "v2"): bottleneck_v2,
}


def stack(x: Any, ly: Layers, *, block: BlockFn, n_stages: int, blocks_per_stage: int, base_width: int) -> Any:
    """Stages of residual blocks; every stage after the first halves the map (while >= 2 px) and doubles width."""
    for stage in range(n_stages):
        width = min(MAX_WIDTH, base_width * 2**stage)
        for b in range(blocks_per_stage):
            stride = 2 if stage > 0 and b == 0 and spatial_size(x) >= 2 else 1
            x = block(x, width, stride, f"stage{stage + 1}_block{b + 1}", ly)
    return x


def stem(x: Any, kind: str, width: int, preact: bool, ly: Layers) -> Any:
    """``conv3``: 3x3 stride 1; ``conv7_pool``: 7x7 stride 2 + 3x3 max pool stride 2 (strides only while >= 2 px)."""
    if kind == "conv7_pool":
        x = ly.conv(width, 7, "stem_conv", strides=2 if spatial_size(x) >= 2 else 1, use_bias=preact)(x)
        if not preact:
            x = ly.bn_act(x, "stem")
        if spatial_size(x) >= 2:
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
        return x
    x = ly.conv(width, 3, "stem_conv", use_bias=preact)(x)
    return x if preact else ly.bn_act(x, "stem")


def resnet(
    params: Mapping[str, Any],
    spec: DataSpec,
    stack_fn: Callable[[Any, Layers], Any],
    preact: bool,
    name: str,
) -> keras.Model:
    """The generic builder: augmentation -> stem -> ``stack_fn`` -> (v2: BN+act) -> global pool -> head."""
    ly = Layers(params.get("activation", "relu"), regularizer(params))
    inputs = keras.Input(shape=spec.input_shape, name="image")
    x = augment(inputs, params)
    x = stem(x, params.get("stem", "conv3"), int(params["base_width"]), preact, ly)
    x = stack_fn(x, ly)
    if preact:
        x = ly.bn_act(x, "post")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if params.get("dropout", 0.0) > 0:
        x = keras.layers.Dropout(params["dropout"], name="head_dropout")(x)
    return keras.Model(inputs, output_head(x, spec), name=name)


def build_model(params: Mapping[str, Any], spec: DataSpec) -> keras.Model:
    """Pick the variant (block x version) and hand its ``stack_fn`` to ``resnet()``."""
    block, version = params.get("block", "basic"), params.get("version", "v1")
    stack_fn = partial(
        stack,
        block=BLOCKS[(block, version)],
        n_stages=int(params["n_stages"]),
        blocks_per_stage=int(params["blocks_per_stage"]),
        base_width=int(params["base_width"]),
    )
    return resnet(params, spec, stack_fn, preact=version == "v2", name=f"resnet_{version}_{block}")


FAMILY = Family(
    name="resnet",
    build=build_model,
    data_kinds=frozenset({"image"}),
    description="Residual network: stages, blocks per stage, width, basic/bottleneck, v1/v2, stem, augmentation.",
)
