"""Pieces the image-translation families share: generators, PatchGAN critics, scores, grids and the export.

Images reach the networks in [0, 1] (the data set's preprocessing); a generator ends in a sigmoid. A generator
takes an image and a one-hot target domain (a CycleGAN's take none): the one-hot is spread over the image as
constant channels inside the network, so the exported model takes a plain vector. Training steps are
``train_on_batch`` calls on compiled models, portable across backends; critics are copied into frozen twins for
the generator steps, as in the GAN family.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from automl.data import Dataset, DataSpec
from automl.errors import DataError
from automl.families._quality import Features, feature_space, image_grid, sample_score
from automl.training import log_trial_image

GRID_IMAGES = 8  # images per row of a trial's input | translated | reconstructed grid
GRID_EVERY = 2  # epochs between grids on a trial's run
_CLASSIFIERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {}


def _norm(kind: str, name: str) -> keras.layers.Layer:
    if kind == "instance":
        return keras.layers.GroupNormalization(groups=-1, name=name)  # one group per channel: instance norm
    if kind == "batch":
        return keras.layers.BatchNormalization(name=name)
    return keras.layers.Identity(name=name)


def _normed(x: Any, kind: str, name: str, code: Any) -> Any:
    """Normalize, then (given a target code) scale and shift each channel by the code: conditional normalization.

    A constant target channel added at the input alone would not survive instance normalization, which removes
    each channel's per-image mean.
    """
    x = _norm(kind, f"{name}_norm")(x)
    if code is None:
        return x
    width = int(x.shape[-1])
    scale = keras.layers.Dense(width, kernel_initializer="zeros", bias_initializer="ones", name=f"{name}_scale")(code)
    shift = keras.layers.Dense(width, kernel_initializer="zeros", name=f"{name}_shift")(code)
    scaled = keras.layers.Multiply(name=f"{name}_scaled")([x, keras.layers.Reshape((1, 1, width))(scale)])
    return keras.layers.Add(name=f"{name}_shifted")([scaled, keras.layers.Reshape((1, 1, width))(shift)])


def levels(params: Mapping[str, Any], shape: tuple[int, ...], key: str, default: int) -> int:
    """A depth of stride-2 steps, bounded so that the smaller side stays at least 4 pixels."""
    side = min(int(shape[0]), int(shape[1]))
    most = max(0, int(np.log2(max(side, 1))) - 2)
    return max(0, min(int(params.get(key, default)), most))


def build_generator(params: Mapping[str, Any], shape: tuple[int, ...], domains: int, name: str) -> keras.Model:
    """``image [, one-hot target] -> image``: residual blocks between a down and an up step, or a U-Net."""
    image = keras.Input(shape=shape, name="image")
    inputs: list[Any] = [image]
    x, code = image, None
    if domains:
        code = keras.Input(shape=(domains,), name="target")
        inputs.append(code)
        spread = keras.layers.UpSampling2D(size=shape[:2], name="spread_target")(
            keras.layers.Reshape((1, 1, domains), name="target_pixel")(code)
        )
        x = keras.layers.Concatenate(name="with_target")([image, spread])
    filters, norm = int(params.get("g_filters", 16)), str(params.get("normalization", "instance"))
    x = keras.layers.Conv2D(filters, 3, padding="same", name="stem")(x)
    x = keras.layers.ReLU()(_normed(x, norm, "stem", code))
    if params.get("generator", "resnet") == "unet":
        skips = []
        for i in range(levels(params, shape, "g_levels", 2)):
            skips.append(x)
            x = keras.layers.Conv2D(filters * 2 ** (i + 1), 3, strides=2, padding="same", name=f"down_{i}")(x)
            x = keras.layers.LeakyReLU(0.2)(_normed(x, norm, f"down_{i}", code))
        for i, skip in reversed(list(enumerate(skips))):
            x = keras.layers.Conv2DTranspose(filters * 2**i, 3, strides=2, padding="same", name=f"up_{i}")(x)
            x = keras.layers.ReLU()(_normed(x, norm, f"up_{i}", code))
            x = keras.layers.Concatenate(name=f"skip_{i}")([x, skip])
    else:
        down = levels(params, shape, "g_down", 1)
        for i in range(down):
            x = keras.layers.Conv2D(filters * 2 ** (i + 1), 3, strides=2, padding="same", name=f"down_{i}")(x)
            x = keras.layers.ReLU()(_normed(x, norm, f"down_{i}", code))
        width = filters * 2**down
        for i in range(int(params.get("g_blocks", 2))):
            y = keras.layers.Conv2D(width, 3, padding="same", name=f"block_{i}_a")(x)
            y = keras.layers.ReLU()(_normed(y, norm, f"block_{i}_a", code))
            y = keras.layers.Conv2D(width, 3, padding="same", name=f"block_{i}_b")(y)
            y = _normed(y, norm, f"block_{i}_b", code)
            x = keras.layers.Add(name=f"block_{i}")([x, y])
        for i in reversed(range(down)):
            x = keras.layers.Conv2DTranspose(filters * 2**i, 3, strides=2, padding="same", name=f"up_{i}")(x)
            x = keras.layers.ReLU()(_normed(x, norm, f"up_{i}", code))
    out = keras.layers.Conv2D(int(shape[-1]), 3, padding="same", activation="sigmoid", name="to_image")(x)
    return keras.Model(inputs if domains else image, out, name=name)


def build_critic(params: Mapping[str, Any], shape: tuple[int, ...], domains: int, name: str) -> keras.Model:
    """A PatchGAN critic: a map of real/fake logits, plus domain logits when ``domains`` (StarGAN's classifier)."""
    image = keras.Input(shape=shape, name="image")
    filters, norm = int(params.get("d_filters", 16)), str(params.get("normalization", "instance"))
    x = image
    for i in range(max(1, levels(params, shape, "d_layers", 2))):
        x = keras.layers.Conv2D(filters * 2**i, 3, strides=2, padding="same", name=f"conv_{i}")(x)
        x = _norm(norm if i else "none", f"conv_{i}_norm")(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    patches = keras.layers.Conv2D(1, 3, padding="same", name="patch_logits")(x)
    if not domains:
        return keras.Model(image, patches, name=name)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    classes = keras.layers.Dense(domains, name="domain_logits")(pooled)
    return keras.Model(image, [patches, classes], name=name)


def adversarial_loss(params: Mapping[str, Any]) -> keras.losses.Loss:
    """Least squares on the logits, or cross-entropy."""
    if params.get("adversarial_loss", "lsgan") == "bce":
        return keras.losses.BinaryCrossentropy(from_logits=True)
    return keras.losses.MeanSquaredError()


def adam(params: Mapping[str, Any], key: str) -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(float(params.get(key, 2e-4)), beta_1=float(params.get("beta1", 0.5)))


def frozen_twin(critic: keras.Model) -> keras.Model:
    """A non-trainable copy of a critic for the generator steps; its weights are synced before each one."""
    twin = keras.models.clone_model(critic)
    twin.trainable = False
    return twin


def one_hot(indices: np.ndarray, domains: int) -> np.ndarray:
    return np.eye(domains, dtype="float32")[np.asarray(indices, dtype="int64")]


def by_domain(x: np.ndarray, y: np.ndarray, domains: int) -> list[np.ndarray]:
    x = np.asarray(x, dtype="float32")
    return [x[np.asarray(y) == d] for d in range(domains)]


def features_of(x_train: np.ndarray, y_train: np.ndarray) -> Features:
    """The fixed feature space the GAN family scores in, fitted on the real training images of every domain."""
    return feature_space(x_train, y_train)


def domain_classifier(x_train: np.ndarray, y_train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A fixed classifier of the domain (logistic regression on pixels), fitted once per data set: images -> index."""
    import hashlib

    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x_train, dtype="float32").reshape(len(x_train), -1)
    key = hashlib.sha256(x.tobytes() + np.asarray(y_train).astype("int64").tobytes()).hexdigest()
    if key not in _CLASSIFIERS:
        model = LogisticRegression(max_iter=500).fit(x, y_train)
        _CLASSIFIERS[key] = lambda images: model.predict(np.asarray(images, dtype="float32").reshape(len(images), -1))
    return _CLASSIFIERS[key]


def frechet(features: Features, translated: np.ndarray, real: np.ndarray) -> float:
    return sample_score(features, translated, real)


def grid(rows: list[np.ndarray]) -> np.ndarray:
    """Rows of images (input, translated, reconstructed, ...) as one picture, ``GRID_IMAGES`` per row."""
    return image_grid(np.concatenate([r[:GRID_IMAGES] for r in rows]), columns=GRID_IMAGES)


def check_domains(dataset: Dataset, source: str, exactly: int | None, family: str) -> None:
    """Refuse data without enough domains, or with an empty domain folder."""
    from pathlib import Path

    root = Path(source)
    if root.is_dir():
        from automl.data.images import list_images

        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if not list_images(folder):
                raise DataError(f"{source}: domain folder '{folder.name}' has no images")
    names = list(dataset.metadata.get("labels") or [])
    if exactly is not None and len(names) != exactly:
        raise DataError(
            f"{source}: {family} translates between exactly {exactly} domains, one sub-folder each "
            f"(found {len(names)}: {', '.join(map(str, names)) or 'none'})"
        )
    if len(names) < 2:
        raise DataError(f"{source}: {family} needs at least 2 domains, one sub-folder each (found {len(names)})")
    for split, y in (("training", dataset.y_train), ("validation", dataset.y_val), ("test", dataset.y_test)):
        missing = [str(names[d]) for d in range(len(names)) if not np.any(np.asarray(y) == d)]
        if missing:
            raise DataError(f"{source}: the {split} split has no images of domain(s) {', '.join(missing)}")


def network_name(text: str) -> str:
    """A domain name as part of a file or layer name."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", str(text)).strip("_") or "domain"


def export_metadata(dataset: Dataset, test_metrics: Mapping[str, float]) -> dict[str, Any]:
    meta = dataset.metadata
    return {
        "kind": "translation",
        "labels": list(meta["labels"]),
        "image_size": list(meta["image_size"]),
        "channels": int(meta["channels"]),
        "pixel_scale": float(meta["pixel_scale"]),
        "classes": None,
        "test_metrics": dict(test_metrics),
    }


def raw_translator(dataset: Dataset, translate: Callable[[Any, Any], Any], domains: int, name: str) -> keras.Model:
    """``[raw pixels, one-hot target] -> translated image in [0, 1]``: the data's preprocessing, then ``translate``."""
    preprocessor = dataset.make_preprocessor()
    target = keras.Input(shape=(domains,), name="target")
    pixels = preprocessor.input
    return keras.Model({"pixels": pixels, "target": target}, translate(preprocessor(pixels), target), name=name)


def example_input(dataset: Dataset) -> dict[str, np.ndarray]:
    """The pyfunc input example: two raw test images and a target domain index for each."""
    images = np.asarray(dataset.raw_test[:2], dtype="float32")
    return {"image": images, "domain": (np.asarray(dataset.y_test[:2], dtype="int64") + 1) % 2}


def loss_value(loss: Any) -> float:
    """The total of a ``train_on_batch`` result (a list for several outputs)."""
    return float(np.asarray(loss[0] if isinstance(loss, list) else loss))


def run_epochs(
    model: keras.Model,
    epochs: int,
    callbacks: Sequence[Any],
    step: Callable[[], tuple[list[float], list[float]]],
    score: Callable[[], tuple[dict[str, float], np.ndarray]],
) -> None:
    """The epoch loop both translators share: ``step()`` trains one epoch (critic and generator losses),
    ``score()`` gives the validation scores and a grid; the callbacks see ``val_<score>`` per epoch."""
    for cb in callbacks:
        cb.set_model(model)
        cb.on_train_begin()
    model.stop_training = False
    for epoch in range(epochs):
        d_losses, g_losses = step()
        values, picture = score()
        logs = {
            "loss": float(np.mean(g_losses)),
            "g_loss": float(np.mean(g_losses)),
            "d_loss": float(np.mean(d_losses)),
            **{f"val_{k}": v for k, v in values.items()},
        }
        if epoch % GRID_EVERY == 0 or epoch == epochs - 1:
            log_trial_image(f"translations/epoch_{epoch:03d}.png", picture)
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end()


def evaluate(exported: Any, dataset: Dataset, metadata: Mapping[str, Any]) -> dict[str, float]:
    """The test scores computed at export (on the test split)."""
    return dict(metadata.get("test_metrics", {}))


def compile_model(model: keras.Model, params: Mapping[str, Any], spec: DataSpec) -> keras.Model:
    """Nothing to compile on the container: the family's ``fit`` compiles the critics and the generator step."""
    return model
