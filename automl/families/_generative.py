"""Pieces the generative families share: encoders/decoders, training-only noise and penalty layers, val metrics.

Penalties are ``add_loss`` calls inside layers (portable across TensorFlow and JAX); they run only with
``training=True``. Exported networks keep only built-in layers (encoder, decoder, heads), so a registered model
loads anywhere with safe_mode on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from automl.data import DataSpec
from automl.families import SUPERVISED_TASKS  # noqa: F401  (the family modules import it from here)

RECONSTRUCTION_LOSSES = ("mse", "huber", "bce")
EPSILON = 1e-7


@keras.saving.register_keras_serializable(package="automl")
class MaskingNoise(keras.layers.Layer):
    """Denoising: zero each input value with probability ``rate`` (training only, no rescaling)."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x: Any, training: bool | None = None) -> Any:
        if not training or self.rate <= 0:
            return x
        keep = keras.random.uniform(ops.shape(x), seed=self.seed_generator) >= self.rate
        return x * ops.cast(keep, x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="automl")
class JacobianProbe(keras.layers.Layer):
    """The input nudged by ``sigma`` times Gaussian noise (training only): the encoder's response estimates J."""

    def __init__(self, sigma: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sigma = float(sigma)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x: Any, training: bool | None = None) -> Any:
        if not training:
            return x
        return x + self.sigma * keras.random.normal(ops.shape(x), seed=self.seed_generator, dtype=x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "sigma": self.sigma, "seed": self.seed}


def finite_difference_jacobian_norm(code: Any, probed_code: Any, sigma: float) -> Any:
    """Mean over rows of ||J e||^2 for e ~ N(0, I): an unbiased (first-order) estimate of ||J||_F^2."""
    diff = ops.reshape(probed_code - code, (ops.shape(code)[0], -1))
    return ops.mean(ops.sum(ops.square(diff), axis=-1)) / (sigma**2)


@keras.saving.register_keras_serializable(package="automl")
class ContractivePenalty(keras.layers.Layer):
    """Contractive AE: adds ``weight`` x ||d code / d input||_F^2 (finite differences, keras.ops only)."""

    def __init__(self, weight: float, sigma: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weight = float(weight)
        self.sigma = float(sigma)

    def call(self, inputs: Sequence[Any], training: bool | None = None) -> Any:
        code, probed = inputs
        if training:
            self.add_loss(self.weight * finite_difference_jacobian_norm(code, probed, self.sigma))
        return code

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weight": self.weight, "sigma": self.sigma}


@keras.saving.register_keras_serializable(package="automl")
class ActivityPenalty(keras.layers.Layer):
    """Sparse AE: L1 on the code, or KL(target || mean activation) per unit for a sigmoid code."""

    def __init__(self, kind: str, weight: float, target: float = 0.05, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        self.weight = float(weight)
        self.target = float(target)

    def call(self, code: Any, training: bool | None = None) -> Any:
        if training:
            if self.kind == "kl":
                rho = self.target
                rho_hat = ops.clip(ops.mean(code, axis=0), EPSILON, 1 - EPSILON)
                kl = rho * ops.log(rho / rho_hat) + (1 - rho) * ops.log((1 - rho) / (1 - rho_hat))
                self.add_loss(self.weight * ops.sum(kl))
            else:
                self.add_loss(self.weight * ops.mean(ops.sum(ops.abs(code), axis=-1)))
        return code

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kind": self.kind, "weight": self.weight, "target": self.target}


def reconstruction_loss(name: str, target: Any, output: Any, squash: bool) -> Any:
    """Elementwise-mean loss; for bce on unbounded (table) values both sides go through a sigmoid first."""
    if name == "mse":
        return ops.mean(ops.square(target - output))
    if name == "huber":
        err = ops.abs(target - output)
        return ops.mean(ops.where(err <= 1.0, 0.5 * ops.square(err), err - 0.5))
    if name == "bce":
        if squash:
            target, output = ops.sigmoid(target), ops.sigmoid(output)
        output = ops.clip(output, EPSILON, 1 - EPSILON)
        target = ops.clip(target, 0.0, 1.0)
        return ops.mean(-(target * ops.log(output) + (1 - target) * ops.log(1 - output)))
    raise ValueError(f"unknown reconstruction loss '{name}' (valid: {', '.join(RECONSTRUCTION_LOSSES)})")


@keras.saving.register_keras_serializable(package="automl")
class ReconstructionPenalty(keras.layers.Layer):
    """Adds ``weight`` x the reconstruction loss of ``[target, reconstruction]``; passes ``passthrough`` on."""

    def __init__(self, loss: str, squash: bool, weight: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loss = loss
        self.squash = bool(squash)
        self.weight = float(weight)

    def call(self, inputs: Sequence[Any]) -> Any:
        target, reconstruction, passthrough = inputs
        self.add_loss(self.weight * reconstruction_loss(self.loss, target, reconstruction, self.squash))
        return passthrough

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "loss": self.loss, "squash": self.squash, "weight": self.weight}


def conv_levels(spec: DataSpec, n_layers: int) -> int:
    """Stride-2 levels an image allows (at least 1, never below 2x2)."""
    smallest = min(spec.input_shape[:2])
    return max(1, min(n_layers, int(math.log2(max(smallest, 2)))))


def build_encoder(params: Mapping[str, Any], spec: DataSpec, outputs: int, name: str = "encoder") -> keras.Model:
    """Input -> ``outputs`` features: a dense funnel, or strided convolutions for images (``architecture=conv``)."""
    inputs = keras.Input(shape=spec.input_shape, name="features")
    activation = params.get("activation", "relu")
    n_layers = int(params.get("n_layers", 2))
    if params.get("architecture") == "conv" and spec.kind == "image":
        x = inputs
        filters = int(params.get("filters", 16))
        for i in range(conv_levels(spec, n_layers)):
            x = keras.layers.Conv2D(
                filters * 2**i, 3, strides=2, padding="same", activation=activation, name=f"conv_{i}"
            )(x)
        x = keras.layers.Flatten(name="flatten")(x)
    else:
        x = inputs if len(spec.input_shape) == 1 else keras.layers.Flatten(name="flatten")(inputs)
        for i, width in enumerate(dense_widths(params, n_layers)):
            x = keras.layers.Dense(width, activation=activation, name=f"dense_{i}")(x)
    out = keras.layers.Dense(outputs, activation=params.get("code_activation"), name="code")(x)
    return keras.Model(inputs, out, name=name)


def dense_widths(params: Mapping[str, Any], n_layers: int) -> list[int]:
    units = int(params.get("units", 64))
    return [max(8, units // 2**i) for i in range(n_layers)]


def build_decoder(params: Mapping[str, Any], spec: DataSpec, inputs_dim: int, name: str = "decoder") -> keras.Model:
    """Code -> reconstruction in the encoded input space: sigmoid pixels for images, linear values for tables."""
    code = keras.Input(shape=(inputs_dim,), name="code")
    activation = params.get("activation", "relu")
    n_layers = int(params.get("n_layers", 2))
    final = "sigmoid" if spec.kind == "image" else None
    shape = tuple(int(d) for d in spec.input_shape)
    if params.get("architecture") == "conv" and spec.kind == "image":
        levels = conv_levels(spec, n_layers)
        filters = int(params.get("filters", 16))
        height, width = (math.ceil(d / 2**levels) for d in shape[:2])
        top = filters * 2 ** (levels - 1)
        x = keras.layers.Dense(height * width * top, activation=activation, name="project")(code)
        x = keras.layers.Reshape((height, width, top), name="unflatten")(x)
        for i in reversed(range(levels)):
            width_i = filters * 2 ** max(i - 1, 0)
            x = keras.layers.Conv2DTranspose(
                width_i, 3, strides=2, padding="same", activation=activation, name=f"deconv_{i}"
            )(x)
        x = keras.layers.Conv2D(shape[-1], 3, padding="same", activation=final, name="pixels")(x)
        extra_h, extra_w = height * 2**levels - shape[0], width * 2**levels - shape[1]
        if extra_h or extra_w:
            x = keras.layers.Cropping2D(((0, extra_h), (0, extra_w)), name="crop")(x)
    else:
        x = code
        for i, width_i in enumerate(reversed(dense_widths(params, n_layers))):
            x = keras.layers.Dense(width_i, activation=activation, name=f"dense_{i}")(x)
        x = keras.layers.Dense(int(np.prod(shape)), activation=final, name="values")(x)
        if len(shape) > 1:
            x = keras.layers.Reshape(shape, name="unflatten")(x)
    return keras.Model(code, x, name=name)


def row_errors(x: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """Mean squared error per row, in the encoded input space."""
    return np.mean(np.square(x - reconstruction).reshape(len(x), -1), axis=1)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of anomaly scores (label 1 = anomaly); NaN when only one class is present."""
    from sklearn.metrics import roc_auc_score

    if len(np.unique(labels)) < 2 or not np.isfinite(scores).all():
        return float("nan")
    return float(roc_auc_score(labels, scores))


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """``(threshold, f1)``: the score cut that maximizes F1 on labeled validation rows."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, EPSILON)
    best = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    # flag strictly above: put the cut halfway below the chosen score
    below = scores[scores < thresholds[best]]
    cut = (thresholds[best] + below.max()) / 2 if len(below) else thresholds[best] - EPSILON
    return float(cut), float(f1[best])


def f1_at(labels: np.ndarray, flags: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, flags, zero_division=0))
