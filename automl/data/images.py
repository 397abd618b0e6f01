"""Images: a folder with one sub-folder per class, ``.npz`` arrays (via ``arrays``), and ``demo:digits-images``.

The exported model takes raw pixel arrays (N, H, W, C) at the data set's image size; rescaling to [0, 1] lives in
the preprocessor. Labels stay in their original space: class folder names, or the values in the ``.npz``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl.data import Dataset, DataSpec, content_hash, predict_inputs, register_adapter, register_loader
from automl.data._common import encode_target, split_indices
from automl.data.demo import register_demo
from automl.errors import DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
DEFAULT_IMAGE_SIZE = (32, 32)
GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
RAW_EXAMPLES = 5


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, hidden ones skipped), in a stable order."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not any(s.startswith(".") for s in p.parts)
    )


def read_images(paths: Sequence[str | Path], size: tuple[int, int], channels: int | None = None) -> np.ndarray:
    """Decode and resize image files into uint8 (N, H, W, C); ``channels=None``: 1 if all are grayscale, else 3."""
    from PIL import Image, UnidentifiedImageError

    height, width = size
    arrays, gray = [], True
    for path in paths:
        try:
            with Image.open(path) as image:
                gray = gray and image.mode in GRAYSCALE_MODES
                rgb = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
                arrays.append(np.asarray(rgb, dtype="uint8"))
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"{path}: cannot read as an image: {str(exc).splitlines()[0]}") from None
    if not arrays:
        return np.zeros((0, height, width, channels or 3), dtype="uint8")
    x = np.stack(arrays)
    channels = channels or (1 if gray else 3)
    return x[..., :1] if channels == 1 else x


def image_shape(size: Sequence[int]) -> tuple[int, int]:
    """``(height, width)`` from a pair given as a tuple, or as a list (a recorded config read back from JSON)."""
    height, width = size
    return height, width


def resize_images(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (N, H, W, C) arrays; a no-op at the same size."""
    if tuple(x.shape[1:3]) == tuple(size):
        return x
    from keras import ops

    return np.asarray(ops.convert_to_numpy(ops.image.resize(x.astype("float32"), size)), dtype="float32")


def _is_folder(source: str) -> bool:
    return not source.startswith("demo:") and Path(source).is_dir()


@register_loader(_is_folder)
def load_image_folder(source: str, image_size: tuple[int, int] | None = None, **options: Any) -> Dataset:
    """A folder with one sub-folder of images per class; images are resized to ``image_size`` (default 32x32)."""
    root = Path(source)
    by_class = {d.name: list_images(d) for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    by_class = {name: files for name, files in by_class.items() if files}
    if not by_class:
        loose = len(list_images(root))
        hint = f"{loose} image(s) lie directly in it; " if loose else ""
        raise DataError(f"{source}: no images in class sub-folders ({hint}expected one sub-folder per class)")
    if len(by_class) < 2:
        (name,) = by_class
        raise DataError(f"{source}: only one class folder with images ('{name}'); at least 2 classes are needed")
    size = image_shape(image_size or DEFAULT_IMAGE_SIZE)
    paths = [p for files in by_class.values() for p in files]
    labels = np.array([name for name, files in by_class.items() for _ in files], dtype=object)
    x = read_images(paths, size)
    return image_dataset(x, labels, name=root.name, pixel_scale=1 / 255, source=source, **options)


def image_dataset(
    x: np.ndarray,
    labels: np.ndarray,
    name: str,
    pixel_scale: float,
    source: str,
    task: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    **_: Any,
) -> Dataset:
    """Build a ``Dataset`` from raw pixel arrays (N, H, W, C) and their labels."""
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(f"{source}: images must be (N, H, W) or (N, H, W, C) with C in 1, 3 (got {x.shape})")
    task, y_all, classes = encode_target(labels, source, "the labels", task)
    train, val, test = split_indices(y_all, task, source, seed, val_fraction, test_fraction)
    raw = x.astype("float32")
    height, width, channels = (int(d) for d in raw.shape[1:])
    metadata: dict[str, Any] = {
        "kind": "image",
        "task": task,
        "classes": classes,
        "image_size": [height, width],
        "channels": channels,
        "pixel_scale": float(pixel_scale),
    }

    def make_preprocessor() -> Any:
        return build_preprocessor((height, width, channels), pixel_scale)

    preprocessor = make_preprocessor()

    def encode(rows: np.ndarray) -> np.ndarray:
        return predict_inputs(preprocessor, raw[rows]).astype("float32")

    y_scale = None
    if task == "regression":
        y_scale = (float(y_all[train].mean()), float(y_all[train].std() or 1.0))
    spec = DataSpec(
        kind="image", task=task, input_shape=(height, width, channels), n_classes=len(classes) if classes else None
    )
    description = {
        "name": name,
        "kind": "image",
        "images": len(raw),
        "image_size": [height, width],
        "channels": channels,
        "task": task,
        "classes": classes,
        "splits": {"train": len(train), "val": len(val), "test": len(test)},
        "seed": seed,
        "sha256": content_hash(x, np.asarray(labels).astype(str)),
    }
    return Dataset(
        name=name,
        spec=spec,
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


def build_preprocessor(shape: tuple[int, int, int], pixel_scale: float) -> Any:
    """Raw pixels -> [0, 1]: one Rescaling layer (augmentation belongs to the family, training only)."""
    import keras

    pixels = keras.Input(shape=shape, name="pixels", dtype="float32")
    return keras.Model(pixels, keras.layers.Rescaling(pixel_scale, name="rescale")(pixels), name="preprocess")


@register_adapter("image")
def images_to_inputs(metadata: dict[str, Any], raw: Any) -> np.ndarray:
    """Raw pixel arrays (N, H, W[, C]), or image file paths (a list, or a DataFrame with a ``path`` column)."""
    size = tuple(metadata["image_size"])
    channels = int(metadata["channels"])
    if isinstance(raw, pd.DataFrame):
        if "path" not in raw.columns:
            raise DataError("image input: expected pixel arrays, file paths, or a table with a 'path' column")
        raw = raw["path"].tolist()
    if isinstance(raw, (str, Path)):
        raw = [raw]
    if isinstance(raw, (list, tuple)) and raw and isinstance(raw[0], (str, Path)):
        # files hold 8-bit pixels; bring them to the units of the arrays the model was trained on
        to_raw_units = (1 / 255) / float(metadata["pixel_scale"])
        return read_images(raw, size, channels).astype("float32") * np.float32(to_raw_units)
    x = np.asarray(raw, dtype="float32")
    if x.ndim == 2:  # one grayscale image
        x = x[None, ..., None]
    elif x.ndim == 3:  # one (H, W, C) image, or grayscale (N, H, W) images
        x = x[None] if tuple(x.shape[:2]) == size and x.shape[-1] in (1, 3, 4) else x[..., None]
    if x.ndim != 4:
        raise DataError(f"image input: expected arrays of shape (N, H, W[, C]) (got {x.shape})")
    x = x[..., :3] if x.shape[-1] == 4 else x  # drop alpha
    if x.shape[-1] != channels:
        x = np.repeat(x, channels, axis=-1) if x.shape[-1] == 1 else x.mean(axis=-1, keepdims=True)
    return resize_images(x, size)


@register_demo("digits-images")
def digits_images(image_size: tuple[int, int] | None = None, **options: Any) -> Dataset:
    """scikit-learn's 8x8 handwritten digits as (N, 8, 8, 1) images with pixel values 0..16; labels 0..9."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype("float32")[..., None]
    if image_size:
        x = resize_images(x, image_shape(image_size))
    options.pop("target", None)
    return image_dataset(x, bunch.target, "demo:digits-images", 1 / 16, "demo:digits-images", **options)
