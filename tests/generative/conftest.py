"""Small data for the generative families: a table with a rare odd cluster, tiny images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def anomaly_csv(tmp_path: Path) -> Path:
    """240 rows on a 2-D plane inside 6 columns (label ok) and 30 rows off it (label odd)."""
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(2, 6))
    normal = rng.normal(size=(240, 2)) @ basis + 0.05 * rng.normal(size=(240, 6))
    odd = rng.normal(size=(30, 6)) * 1.5
    frame = pd.DataFrame(np.vstack([normal, odd]), columns=[f"f{i}" for i in range(6)])
    frame["label"] = ["ok"] * 240 + ["odd"] * 30
    path = tmp_path / "anomaly.csv"
    frame.sample(frac=1.0, random_state=0).to_csv(path, index=False)
    return path


@pytest.fixture
def plain_csv(tmp_path: Path) -> Path:
    """A table without a label: 120 rows of 5 correlated columns."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 2)) @ rng.normal(size=(2, 5))
    path = tmp_path / "plain.csv"
    pd.DataFrame(x, columns=list("abcde")).to_csv(path, index=False)
    return path
