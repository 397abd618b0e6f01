"""Time-series forecasting: a CSV of time-ordered numeric columns, ``--window``, ``--horizon``, ``--target``.

Each example is a window of ``window`` rows of every numeric column; its target is the next ``horizon`` values of
the target column. Splits follow time: the targets of train windows come first, then val, then test, and windows
whose targets would straddle two splits are dropped. Normalization uses the training rows only.

Raw inputs for prediction are windows (N, window, F), or a frame of the numeric columns, which becomes its
sliding windows: one per row from row ``window - 1`` on, forecasting the ``horizon`` rows after that row (so the
last one forecasts past the end of the frame).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl.data import Dataset, DataSpec, content_hash, predict_inputs, register_adapter
from automl.data.demo import register_demo
from automl.errors import DataError

DEMO_WINDOW = 48
RAW_EXAMPLES = 5


def load_series_file(source: str, window: int, target: str | None = None, **options: Any) -> Dataset:
    """Read a CSV or Parquet file of time-ordered rows and cut it into windows."""
    from automl.data.frames import read_frame

    return series_dataset(read_frame(source), window, target, name=Path(source).name, **options)


def numeric_columns(frame: pd.DataFrame, name: str, target: str | None) -> tuple[list[str], str]:
    """The numeric columns (the inputs) and the target column; other columns (dates, ids) are left out."""
    frame.columns = [str(c) for c in frame.columns]
    columns = [
        c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    if target is None:
        if len(columns) != 1:
            raise DataError(f"{name}: --target is required for a series (numeric columns: {', '.join(columns)})")
        target = columns[0]
    if target not in frame.columns:
        raise DataError(f"{name}: target column '{target}' not found (columns: {', '.join(frame.columns)})")
    if target not in columns:
        raise DataError(f"{name}: target column '{target}' is not numeric, so it cannot be forecast")
    for column in columns:
        missing = int(frame[column].isna().sum())
        if missing:
            raise DataError(f"{name}: column '{column}' has {missing} missing value(s); fill them first")
    return columns, target


def sliding_windows(values: np.ndarray, window: int) -> np.ndarray:
    """All windows of ``window`` consecutive rows: (rows - window + 1, window, F)."""
    view = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)  # (n, F, window)
    return np.ascontiguousarray(view.transpose(0, 2, 1))


def time_split(
    n: int, window: int, horizon: int, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Start rows of the forecast targets per split, in time order; also the first row after training."""
    starts = np.arange(window, n - horizon + 1)
    train_end = round(n * (1.0 - val_fraction - test_fraction))
    val_end = round(n * (1.0 - test_fraction))
    ends = starts + horizon  # one past the last target row
    train = starts[ends <= train_end]
    val = starts[(starts >= train_end) & (ends <= val_end)]
    test = starts[starts >= val_end]
    return train, val, test, train_end


def series_dataset(
    frame: pd.DataFrame,
    window: int | None,
    target: str | None,
    name: str,
    horizon: int = 1,
    task: str | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    **_: Any,
) -> Dataset:
    """Build a ``Dataset`` of windows from time-ordered rows (first row = oldest)."""
    if task not in (None, "regression"):
        raise DataError(f"{name}: a time series is forecast (regression), not '{task}'")
    if window is None or window < 1:
        raise DataError(f"{name}: --window must be at least 1 (got {window})")
    if horizon < 1:
        raise DataError(f"{name}: --horizon must be at least 1 (got {horizon})")
    frame = frame.copy()
    columns, target = numeric_columns(frame, name, target)
    n = len(frame)
    if n < window + horizon:
        raise DataError(f"{name}: the series has {n} rows, shorter than its window ({window}) + horizon ({horizon})")
    values = frame[columns].to_numpy(dtype="float32")
    series = frame[target].to_numpy(dtype="float32")
    train, val, test, train_end = time_split(n, window, horizon, val_fraction, test_fraction)
    for part, starts in (("train", train), ("val", val), ("test", test)):
        if len(starts) == 0:
            raise DataError(
                f"{name}: {n} rows are too few for window {window} + horizon {horizon}: "
                f"the {part} split gets no complete window (use a smaller --window or more rows)"
            )
    windows = sliding_windows(values, window)  # windows[s - window] ends right before row s

    def split(starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        targets = np.stack([series[s : s + horizon] for s in starts]).astype("float32")
        return windows[starts - window], targets

    # the same training statistics standardize the target's input column and (as ``y_scale``) the forecasts,
    # so a family may add a correction to the last observed value
    mean, variance = values[:train_end].mean(axis=0), values[:train_end].var(axis=0)
    metadata: dict[str, Any] = {
        "kind": "series",
        "task": "regression",
        "target": target,
        "feature_columns": columns,
        "window": int(window),
        "horizon": int(horizon),
        "classes": None,
    }

    def make_preprocessor() -> Any:
        return build_preprocessor((window, len(columns)), mean, variance)

    preprocessor = make_preprocessor()
    (raw_train, y_train), (raw_val, y_val), (raw_test, y_test) = split(train), split(val), split(test)

    def encode(raw: np.ndarray) -> np.ndarray:
        return predict_inputs(preprocessor, raw).astype("float32")

    history = series[:train_end]
    description = {
        "name": name,
        "kind": "series",
        "rows": n,
        "columns": columns,
        "target": target,
        "window": window,
        "horizon": horizon,
        "task": "regression",
        "splits": {"train": len(train), "val": len(val), "test": len(test)},
        "split_rows": {"train_end": train_end, "test_start": int(test[0])},
        "seed": seed,
        "sha256": content_hash(frame[columns]),
    }
    return Dataset(
        name=name,
        spec=DataSpec(
            kind="series",
            task="regression",
            input_shape=(window, len(columns)),
            output_dim=horizon,
            extra={"target_index": columns.index(target)},
        ),
        x_train=encode(raw_train),
        y_train=y_train,
        x_val=encode(raw_val),
        y_val=y_val,
        x_test=encode(raw_test),
        y_test=y_test,
        raw_test=raw_test,
        raw_example=raw_train[:RAW_EXAMPLES],
        make_preprocessor=make_preprocessor,
        metadata=metadata,
        description=description,
        y_scale=(float(history.mean()), float(history.std() or 1.0)),
    )


def build_preprocessor(shape: tuple[int, int], mean: np.ndarray, variance: np.ndarray) -> Any:
    """Raw windows -> per-column standardized windows (statistics of the training rows)."""
    import keras

    window = keras.Input(shape=shape, name="window", dtype="float32")
    normalized = keras.layers.Normalization(mean=mean, variance=variance, name="normalize")(window)
    return keras.Model(window, normalized, name="preprocess")


@register_adapter("series")
def series_to_inputs(metadata: dict[str, Any], raw: Any) -> np.ndarray:
    """Windows (N, window, F) or one (window, F); or a frame of the numeric columns -> its sliding windows."""
    window, columns = int(metadata["window"]), list(metadata["feature_columns"])
    if isinstance(raw, pd.DataFrame):
        raw.columns = [str(c) for c in raw.columns]
        missing = [c for c in columns if c not in raw.columns]
        if missing:
            raise DataError(f"input is missing column(s): {', '.join(missing)}")
        if len(raw) < window:
            raise DataError(f"the series has {len(raw)} rows, shorter than its window ({window})")
        from automl.data.tabular import numeric_values

        return sliding_windows(numeric_values(raw, columns), window)
    x = np.asarray(raw, dtype="float32")
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != (window, len(columns)):
        raise DataError(f"series input: expected windows of shape (N, {window}, {len(columns)}) (got {x.shape})")
    return x


def seasonal_frame(n: int = 1500) -> pd.DataFrame:
    """Hourly load with a daily and a weekly cycle, a trend, AR(1) noise and a temperature covariate."""
    rng = np.random.default_rng(2024)  # the data stay the same whatever the search seed
    t = np.arange(n, dtype="float64")
    temperature = 15 + 8 * np.sin(2 * np.pi * (t - 6) / 24) + rng.normal(scale=1.0, size=n)
    noise = np.zeros(n)
    for i in range(1, n):
        noise[i] = 0.7 * noise[i - 1] + rng.normal(scale=0.6)
    load = (
        50
        + 0.004 * t
        + 6 * np.sin(2 * np.pi * t / 24)
        + 3 * np.sin(2 * np.pi * t / 168)
        + 0.4 * (temperature - 15)
        + noise
    )
    return pd.DataFrame({"hour": t.astype(int), "temperature": temperature.round(3), "load": load.round(3)})


@register_demo("series-seasonal")
def series_seasonal(window: int | None = None, **options: Any) -> Dataset:
    """Generated hourly load (target ``load``) with daily/weekly seasons; default window 48, forecast ``horizon``."""
    frame = seasonal_frame().drop(columns=["hour"])
    options.pop("target", None)
    return series_dataset(frame, window or DEMO_WINDOW, "load", name="demo:series-seasonal", **options)
