"""Custom preprocessing layers that ship inside exported models (registered, so safe_mode loads them)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="automl")
class Impute(keras.layers.Layer):
    """Replace NaNs column by column with fill values learned on the training split."""

    def __init__(self, fill_values: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fill_values = [float(v) for v in fill_values]

    def call(self, inputs: Any) -> Any:
        fill = ops.convert_to_tensor(self.fill_values, dtype=inputs.dtype)
        return ops.where(ops.isnan(inputs), fill, inputs)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fill_values": self.fill_values}


@keras.saving.register_keras_serializable(package="automl")
class Rescale(keras.layers.Layer):
    """``x * scale + offset``: maps a standardized regression output back to target units."""

    def __init__(self, scale: float, offset: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.offset = float(offset)

    def call(self, inputs: Any) -> Any:
        return inputs * self.scale + self.offset

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}
