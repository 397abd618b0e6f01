"""Time-series forecasting: windows in time order without leakage, demo:series-seasonal, adapters, bad inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl.data import adapt_input, load_dataset
from automl.data.series import seasonal_frame, time_split


@pytest.fixture
def series_csv(tmp_path: Path) -> Path:
    t = np.arange(200)
    frame = pd.DataFrame(
        {"date": pd.date_range("2024-01-01", periods=200, freq="h").astype(str), "x": np.cos(t / 5), "y": t * 1.0}
    )
    path = tmp_path / "steps.csv"
    frame.to_csv(path, index=False)
    return path


def test_windows_follow_time_and_targets_never_cross_splits() -> None:
    train, val, test, train_end = time_split(100, window=10, horizon=3, val_fraction=0.2, test_fraction=0.2)
    assert train_end == 60
    assert train.max() + 3 <= 60 <= val.min()  # train targets end before val targets start
    assert val.max() + 3 <= 80 <= test.min()
    assert test.max() + 3 == 100


def test_series_csv_windows_targets_and_train_only_normalization(series_csv: Path) -> None:
    data = load_dataset(str(series_csv), window=8, horizon=2, target="y")
    assert data.spec.kind == "series" and data.task == "regression"
    assert data.spec.input_shape == (8, 2) and data.spec.output_dim == 2
    assert data.metadata["feature_columns"] == ["x", "y"]  # the date strings are left out
    assert data.y_train.shape == (len(data.x_train), 2)
    # a window's targets are the next `horizon` values of y, which here counts the rows
    first = data.raw_test[0]
    np.testing.assert_allclose(data.y_test[0], [first[-1, 1] + 1, first[-1, 1] + 2])
    # later splits come later in time
    assert data.y_train.max() < data.y_val.min() and data.y_val.max() < data.y_test.min()
    # statistics from the training rows only: y in train is 0..119, so its mean is 59.5
    assert data.y_scale is not None and data.y_scale[0] == pytest.approx(59.5)
    normalize = data.make_preprocessor().get_layer("normalize")
    assert float(np.asarray(normalize.mean).reshape(-1)[1]) == pytest.approx(59.5)


def test_frames_become_sliding_windows_and_arrays_pass(series_csv: Path) -> None:
    data = load_dataset(str(series_csv), window=8, target="y")
    frame = pd.read_csv(series_csv).tail(20)
    windows = adapt_input(data.metadata, frame)
    assert windows.shape == (13, 8, 2)
    np.testing.assert_allclose(windows[-1], frame[["x", "y"]].tail(8).to_numpy(), rtol=1e-6)
    assert adapt_input(data.metadata, windows[0]).shape == (1, 8, 2)


def test_seasonal_demo_forecasts_load_with_a_temperature_covariate() -> None:
    data = load_dataset("demo:series-seasonal", horizon=3)
    assert data.spec.input_shape == (48, 2) and data.spec.output_dim == 3
    assert data.metadata["target"] == "load"
    assert len(seasonal_frame()) == 1500
    smaller = load_dataset("demo:series-seasonal", window=12)
    assert smaller.spec.input_shape == (12, 2)


def test_series_shorter_than_its_window_is_exit_2(tmp_path: Path, cli_error: Callable[..., str]) -> None:
    path = tmp_path / "short.csv"
    pd.DataFrame({"y": np.arange(20.0)}).to_csv(path, index=False)
    line = cli_error("search", "--family", "rnn", "--data", str(path), "--window", "24")
    assert "short.csv: the series has 20 rows, shorter than its window (24) + horizon (1)" in line
    line = cli_error("search", "--family", "rnn", "--data", str(path), "--window", "12")
    assert "short.csv: 20 rows are too few for window 12" in line


def test_series_target_must_be_a_numeric_column(series_csv: Path, cli_error: Callable[..., str]) -> None:
    assert "target column 'date' is not numeric" in cli_error(
        "search", "--family", "rnn", "--data", str(series_csv), "--window", "8", "--target", "date"
    )
    assert "--target is required for a series (numeric columns: x, y)" in cli_error(
        "search", "--family", "rnn", "--data", str(series_csv), "--window", "8"
    )


def test_series_prediction_input_shorter_than_the_window_is_refused(series_csv: Path) -> None:
    from automl.errors import DataError

    data = load_dataset(str(series_csv), window=8, target="y")
    with pytest.raises(DataError, match="5 rows, shorter than its window"):
        adapt_input(data.metadata, pd.read_csv(series_csv).head(5))
