"""Image data augmentation shared by the image families: Keras preprocessing layers, active only in training."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


def augment(x: Any, params: Mapping[str, Any]) -> Any:
    """Random flip, rotation, zoom and translation as searched; each is the identity at inference."""
    if not params.get("augment"):
        return x
    flip = params.get("flip", "none")
    if flip in FLIP_MODES:
        x = keras.layers.RandomFlip(flip, name="aug_flip")(x)
    rotation = float(params.get("rotation", 0.0))
    if rotation > 0:
        x = keras.layers.RandomRotation(rotation, fill_mode="nearest", name="aug_rotation")(x)
    zoom = float(params.get("zoom", 0.0))
    if zoom > 0:
        x = keras.layers.RandomZoom((-zoom, zoom), fill_mode="nearest", name="aug_zoom")(x)
    translation = float(params.get("translation", 0.0))
    if translation > 0:
        x = keras.layers.RandomTranslation(translation, translation, fill_mode="nearest", name="aug_translation")(x)
    return x


def spatial_size(x: Any) -> int:
    """The smaller of a feature map's height and width (channels last)."""
    return int(min(x.shape[1], x.shape[2]))


def regularizer(params: Mapping[str, Any]) -> Any:
    """An L2 kernel penalty when ``l2`` is searched and non-zero."""
    return keras.regularizers.L2(params["l2"]) if params.get("l2") else None
