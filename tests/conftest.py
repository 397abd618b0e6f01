"""Shared fixtures: a fresh store per test, quiet libraries, small deterministic data."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# trials train in this process unless a test is about isolation (the product default is a child process per trial;
# tests/test_isolation_default.py checks that default, tests/reliability/test_isolation.py the child processes)
os.environ.setdefault("AUTOML_ISOLATION", "none")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # two test processes share two cores: one TensorFlow thread each (in process, in trial processes, in the CLI
    # subprocesses), rather than thread pools that spin against each other
    os.environ.setdefault("AUTOML_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl.logs import import_backend_quietly, quiet_libraries

quiet_libraries()
import_backend_quietly()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty store directory (mlflow.db, artifacts/, optuna.db are created under it)."""
    path = tmp_path / "store"
    path.mkdir()
    return path


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    """A small classification CSV with string labels, a categorical column and NaNs in features."""
    rng = np.random.default_rng(0)
    n = 120
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    label = np.where(x1 + 0.5 * (color == "red") > 0.2, "yes", "no")
    x2[::17] = np.nan
    frame = pd.DataFrame({"x1": x1, "x2": x2, "color": color, "y": label})
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def regression_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    n = 100
    x = rng.normal(size=(n, 3))
    y = 50.0 + 10.0 * x[:, 0] - 5.0 * x[:, 1] + rng.normal(scale=0.5, size=n)
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "target": y})
    path = tmp_path / "reg.csv"
    frame.to_csv(path, index=False)
    return path
