"""Custom preprocessing layers that ship inside exported models (registered, so safe_mode loads them)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="automl")
class Impute(keras.layers.Layer):
    """Replace NaN and ±Inf column by column with fill values learned on the training split."""

    def __init__(self, fill_values: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fill_values = [float(v) for v in fill_values]

    def call(self, inputs: Any) -> Any:
        fill = ops.convert_to_tensor(self.fill_values, dtype=inputs.dtype)
        return ops.where(ops.isfinite(inputs), inputs, fill)

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


@keras.saving.register_keras_serializable(package="automl")
class CapTokenIds(keras.layers.Layer):
    """Map token ids at or above ``vocab_size`` to the OOV id: a searched vocabulary below the preprocessor's.

    Text preprocessors number tokens by falling frequency, so keeping the ids below ``vocab_size`` keeps the
    ``vocab_size`` most frequent tokens (padding 0 and OOV included); rarer ones become OOV.
    """

    def __init__(self, vocab_size: int, oov_id: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.oov_id = int(oov_id)

    def call(self, inputs: Any) -> Any:
        ids = ops.cast(inputs, "int32")
        return ops.where(ids < self.vocab_size, ids, ops.full_like(ids, self.oov_id))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def compute_output_spec(self, inputs: Any) -> Any:
        return keras.KerasTensor(inputs.shape, dtype="int32")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "vocab_size": self.vocab_size, "oov_id": self.oov_id}


@keras.saving.register_keras_serializable(package="automl")
class LastValue(keras.layers.Layer):
    """The last step of one feature of a window, repeated ``repeats`` times: a naive forecast to add a correction to."""

    def __init__(self, index: int, repeats: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = int(index)
        self.repeats = int(repeats)

    def call(self, inputs: Any) -> Any:
        last = inputs[:, -1, self.index : self.index + 1]
        return ops.repeat(last, self.repeats, axis=1) if self.repeats > 1 else last

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], self.repeats)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "index": self.index, "repeats": self.repeats}


@keras.saving.register_keras_serializable(package="automl")
class FeatureSteps(keras.layers.Layer):
    """Every step of one feature of a window: (N, window, F) -> (N, window), e.g. for a linear autoregression."""

    def __init__(self, index: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, inputs: Any) -> Any:
        return inputs[:, :, self.index]

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], input_shape[1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "index": self.index}


WINDOW_EPSILON = 1e-3  # keeps a flat window finite; the series loader has standardized every column already


@keras.saving.register_keras_serializable(package="automl")
class WindowNormalize(keras.layers.Layer):
    """Each window minus its own mean, over its own standard deviation, per feature: (N, window, F) -> same."""

    def call(self, inputs: Any) -> Any:
        mean = ops.mean(inputs, axis=1, keepdims=True)
        std = ops.sqrt(ops.var(inputs, axis=1, keepdims=True) + WINDOW_EPSILON**2)
        return (inputs - mean) / std

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape


@keras.saving.register_keras_serializable(package="automl")
class WindowScale(keras.layers.Layer):
    """One feature's standard deviation over each window, repeated ``repeats`` times: (N, window, F) -> (N, repeats).

    Multiplies a correction learned on normalized windows back into the series' units.
    """

    def __init__(self, index: int, repeats: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = int(index)
        self.repeats = int(repeats)

    def call(self, inputs: Any) -> Any:
        steps = inputs[:, :, self.index]
        std = ops.sqrt(ops.var(steps, axis=1, keepdims=True) + WINDOW_EPSILON**2)
        return ops.repeat(std, self.repeats, axis=1) if self.repeats > 1 else std

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], self.repeats)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "index": self.index, "repeats": self.repeats}
