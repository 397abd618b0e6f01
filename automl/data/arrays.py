"""``.npz`` files holding ``x`` and ``y``: images (N, H, W[, C]) or sequences (N, T, F).

A 4-D ``x`` is images. A 3-D ``x`` is grayscale images when the file says so (a ``kind`` entry of "image"), when
it holds bytes (uint8), or when the chosen family takes images and not sequences; otherwise it is sequences.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from automl.data import Dataset, register_loader
from automl.data._common import family_kinds
from automl.errors import DataError

KINDS = ("image", "sequence")


def read_npz(source: str, keys: tuple[str, ...] = ("x", "y")) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file (no pickled objects); a missing key raises ``DataError``."""
    path = Path(source)
    if not path.is_file():
        raise DataError(f"{source}: data file not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as exc:  # object arrays need pickle, which could run code
        raise DataError(f"{source}: cannot read without pickle: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # zipfile and numpy raise many types for damaged files
        raise DataError(f"{source}: cannot read as .npz: {str(exc).splitlines()[0]}") from None
    for key in keys:
        if key not in arrays:
            raise DataError(f"{source}: missing key '{key}' (keys: {', '.join(arrays) or 'none'})")
    return arrays


def array_kind(x: np.ndarray, declared: str | None, family: str | None, source: str) -> str:
    """``image`` or ``sequence`` for an ``x`` array (see the module docstring)."""
    if declared is not None:
        if declared not in KINDS:
            raise DataError(f"{source}: kind '{declared}' is not one of {', '.join(KINDS)}")
        return declared
    if x.ndim == 4:
        return "image"
    if x.ndim == 3:
        kinds = family_kinds(family)
        if x.dtype == np.uint8 or ("image" in kinds and "sequence" not in kinds):
            return "image"
        return "sequence"
    raise DataError(f"{source}: x has shape {x.shape}; expected images (N, H, W[, C]) or sequences (N, T, F)")


@register_loader(lambda source: Path(source).suffix.lower() == ".npz")
def load_npz(
    source: str, image_size: tuple[int, int] | None = None, family: str | None = None, **options: Any
) -> Dataset:
    """Read ``x`` and ``y`` from an ``.npz`` file and hand them to the image or the sequence loader."""
    arrays = read_npz(source)
    x, y = arrays["x"], arrays["y"]
    if len(x) != len(y):
        raise DataError(f"{source}: x has {len(x)} rows but y has {len(y)}; they must match")
    if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise DataError(f"{source}: y must hold one label per row (got shape {y.shape})")
    declared = str(arrays["kind"]) if "kind" in arrays else None
    name = Path(source).name
    if array_kind(x, declared, family, source) == "image":
        from automl.data.images import image_dataset, image_shape, resize_images

        images = x[..., None] if x.ndim == 3 else x
        scale = 1 / 255 if images.dtype.kind in "ui" or float(np.max(images, initial=0)) > 1.0 else 1.0
        if image_size:
            images = resize_images(images, image_shape(image_size))
        return image_dataset(images, y.reshape(-1), name=name, pixel_scale=scale, source=source, **options)
    from automl.data.sequences import sequence_dataset

    return sequence_dataset(x, y.reshape(-1), name=name, source=source, **options)
