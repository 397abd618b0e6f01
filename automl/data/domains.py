"""Image domains for translation: generated demos with a known true mapping, the translator's input, and output.

A folder of domain sub-folders is read by the image loader (one "class" per domain); the ``translation`` task keeps
the domain of each image. The demos draw scikit-learn's digits (nothing downloaded) in pixel styles whose mapping
is known, split so that no digit image appears in two domains (unpaired), which lets a benchmark score a
translation against the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl.data import Dataset, register_adapter
from automl.data.demo import register_demo
from automl.data.images import image_dataset, image_shape, images_to_inputs, resize_images
from automl.errors import DataError

DEMO_SIZE = (16, 16)
# a pixel style: ink in [0, 1] -> the pixel in [0, 1], and back
Style = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]
STYLES: dict[str, Style] = {
    "ink": (lambda b: b, lambda x: x),  # light strokes on black
    "paper": (lambda b: 1.0 - b, lambda x: 1.0 - x),  # dark strokes on white
    "faded": (lambda b: 0.3 + 0.4 * b, lambda x: (x - 0.3) / 0.4),  # low-contrast grey
}


def true_translation(x: np.ndarray, source: str, target: str) -> np.ndarray:
    """What a demo image in ``source`` style (pixels in [0, 1]) is in ``target`` style."""
    ink = np.clip(STYLES[source][1](np.asarray(x, dtype="float32")), 0.0, 1.0)
    return np.asarray(STYLES[target][0](ink), dtype="float32")


def digit_domains(styles: Sequence[str], image_size: Any = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Digits (pixels 0..255) in the given styles, each image in one domain only; and each image's domain name."""
    from sklearn.datasets import load_digits

    ink = load_digits().images.astype("float32")[..., None] / 16.0
    ink = np.clip(resize_images(ink, image_shape(image_size or DEMO_SIZE)), 0.0, 1.0)
    order = np.random.default_rng(seed).permutation(len(ink))
    domain = np.empty(len(ink), dtype=object)
    x = np.empty_like(ink)
    for i, style in enumerate(styles):
        rows = order[i :: len(styles)]
        domain[rows] = style
        x[rows] = STYLES[style][0](ink[rows])
    return np.round(x * 255.0), domain


def _demo(name: str, styles: Sequence[str]) -> None:
    @register_demo(name)
    def factory(image_size: Any = None, **options: Any) -> Dataset:
        x, domain = digit_domains(styles, image_size, int(options.get("seed", 0)))
        options.pop("target", None)
        return image_dataset(x, domain, f"demo:{name}", 1 / 255, f"demo:{name}", **options)

    factory.__doc__ = f"scikit-learn's digits at 16x16 in the styles {', '.join(styles)}: one domain each."


_demo("digit-domains", ("ink", "paper"))  # two domains: the cyclegan demo
_demo("digit-styles", ("ink", "paper", "faded"))  # three: the stargan demo


def domain_indices(metadata: dict[str, Any], domains: Any, n: int) -> np.ndarray:
    """Target domains given as names or indices (one for all images, or one per image) -> indices."""
    names = [str(d) for d in metadata["labels"]]
    values = np.atleast_1d(np.asarray(domains, dtype=object))
    if len(values) == 1:
        values = np.repeat(values, n)
    if len(values) != n:
        raise DataError(f"translation input: {len(values)} target domains for {n} images")
    out = np.empty(n, dtype="int64")
    for i, value in enumerate(values):
        text = str(value.item() if hasattr(value, "item") else value)
        if text in names:
            out[i] = names.index(text)
        elif text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
            out[i] = int(text)
        else:
            raise DataError(f"unknown target domain '{text}' (valid: {', '.join(names)})")
    return out


@register_adapter("translation")
def translation_inputs(metadata: dict[str, Any], raw: Any) -> dict[str, np.ndarray]:
    """A translator's input: ``{"image": pixels or file paths, "domain": target names or indices}``."""
    if isinstance(raw, pd.DataFrame):  # a table: a 'path' column of image files and a 'domain' column
        if not {"path", "domain"} <= set(raw.columns):
            raise DataError("translation input: a table needs 'path' and 'domain' columns")
        raw = {"image": raw["path"].tolist(), "domain": raw["domain"].to_numpy()}
    if not isinstance(raw, dict) or not {"image", "domain"} <= set(raw):
        raise DataError("translation input: expected {'image': images, 'domain': target domain(s)}")
    pixels = images_to_inputs(metadata, raw["image"])
    target = domain_indices(metadata, raw["domain"], len(pixels))
    return {"pixels": pixels, "target": np.eye(len(metadata["labels"]), dtype="float32")[target]}


def read_translation_input(source: str, metadata: dict[str, Any]) -> tuple[np.ndarray, list[str]]:
    """Images to translate, in the model's raw units, and a file name for each: a folder, an image, an ``.npz``."""
    from automl.data.images import list_images, read_images

    path = Path(source)
    if not path.exists():
        raise DataError(f"{source}: data file not found")
    if path.suffix.lower() == ".npz":
        with np.load(path) as arrays:
            if "x" not in arrays:
                raise DataError(f"{source}: expected an array named 'x' (images)")
            x = arrays["x"]
        return x, [f"{i:05d}" for i in range(len(x))]
    files = list_images(path) if path.is_dir() else [path]
    if not files:
        raise DataError(f"{source}: no images found")
    size = image_shape(metadata["image_size"])
    pixels = read_images(files, size, int(metadata["channels"])).astype("float32")
    names = [str(f.relative_to(path)) if path.is_dir() else f.name for f in files]
    return pixels * np.float32((1 / 255) / float(metadata["pixel_scale"])), names


def write_translations(images: np.ndarray, names: list[str], source: str, output: Path, scale: float) -> int:
    """One PNG per image under its own file name (``.png``), or one ``.npz`` (x in the input's units)."""
    output.mkdir(parents=True, exist_ok=True)
    images = np.clip(np.asarray(images, dtype="float32"), 0.0, 1.0)
    if source.lower().endswith(".npz"):
        np.savez_compressed(output / Path(source).name, x=images / np.float32(scale))
        return len(images)
    from PIL import Image

    for image, name in zip(images, names, strict=True):
        target = (output / name).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        pixels = (image * 255).round().astype("uint8")
        Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(target)
    return len(images)
