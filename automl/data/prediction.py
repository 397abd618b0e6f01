"""Raw inputs for ``automl predict`` from a path (a folder of images, ``.npz``, CSV or Parquet), and the output rows.

A folder gives one row per image file (its path); an ``.npz`` gives one row per entry of its ``x``; a table gives
its own rows. For a series table, row ``t`` gets the forecast made from the window that ends at row ``t``
(empty before the first full window), one column per step ahead when the horizon is above 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl.errors import DataError

__all__ = ["prediction_frame", "read_prediction_input"]


def read_prediction_input(path: str, metadata: dict[str, Any]) -> tuple[Any, pd.DataFrame]:
    """``(raw, rows)``: what the model's input adapter takes, and the rows to write the predictions beside."""
    from automl.data.arrays import read_npz
    from automl.data.frames import read_frame
    from automl.data.images import list_images

    kind = metadata["kind"]
    source = Path(path)
    if source.is_dir():
        if kind != "image":
            raise DataError(f"{path}: a folder is read as images, but this model takes {kind} data")
        files = [str(f) for f in list_images(source)]
        if not files:
            raise DataError(f"{path}: no image files found in the folder")
        return files, pd.DataFrame({"path": files})
    if not source.is_file():
        raise DataError(f"{path}: data file not found")
    if source.suffix.lower() == ".npz":
        if kind not in ("image", "sequence", "series"):
            raise DataError(f"{path}: an .npz file holds arrays, but this model takes {kind} data")
        x = read_npz(path, keys=("x",))["x"]
        return x, pd.DataFrame({"index": np.arange(len(x))})
    frame = read_frame(path)
    return frame, frame


def prediction_frame(rows: pd.DataFrame, predictions: Any, metadata: dict[str, Any], column: str) -> pd.DataFrame:
    """``rows`` plus the prediction column(s)."""
    out = rows.copy()
    if isinstance(predictions, pd.DataFrame):  # models that name their own output columns (scores, codes, ...)
        for name in predictions.columns:
            out[str(name)] = predictions[name].to_numpy()
        return out
    values = np.asarray(predictions)
    if metadata["kind"] == "series" and len(values) != len(out):
        # sliding windows of a frame: the first forecast belongs to the row that ends the first window
        pad = np.full((len(out) - len(values), *values.shape[1:]), np.nan)
        values = np.concatenate([pad, values.astype("float64")])
    if values.ndim == 2 and values.shape[1] > 1:
        for step in range(values.shape[1]):
            out[f"{column}_{step + 1}"] = values[:, step]
    else:
        out[column] = list(values.reshape(len(values)) if values.ndim == 2 else values)
    return out
