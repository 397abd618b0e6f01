"""Shared by the non-table loaders: label encoding in the original label space, splits, the family's data kinds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from automl.data.tabular import _split, detect_task
from automl.errors import DataError

__all__ = ["encode_target", "family_kinds", "split_indices"]


def encode_target(values: Any, source: str, what: str, task: str | None) -> tuple[str, np.ndarray, list[Any] | None]:
    """``(task, y, classes)``: class indices into sorted original labels, or float targets for regression."""
    series = pd.Series(np.asarray(values).reshape(-1))
    missing = int(series.isna().sum())
    if missing:
        raise DataError(f"{source}: {what} has {missing} missing value(s)")
    task = task or detect_task(series)
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(series):
            raise DataError(f"{source}: {what} is not numeric, so it cannot be a regression target")
        return task, series.to_numpy(dtype="float32"), None
    labels = [v.item() if hasattr(v, "item") else v for v in series]
    classes = sorted(set(labels), key=lambda v: (str(type(v)), v))
    if len(classes) < 2:
        raise DataError(f"{source}: {what} has a single class ('{classes[0]}'); nothing to classify")
    lookup = {c: i for i, c in enumerate(classes)}
    return task, np.array([lookup[v] for v in labels], dtype="int32"), classes


def split_indices(
    y: np.ndarray, task: str, source: str, seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffled train/val/test indices, stratified by class for classification (as for tables)."""
    n = len(y)
    if n < 10:
        raise DataError(f"{source}: only {n} examples; at least 10 are needed to split train/val/test")
    return _split(n, y if task == "classification" else None, seed, val_fraction, test_fraction)


def family_kinds(family: str | None) -> frozenset[str]:
    """The data kinds the chosen family takes (empty when none is named or it is unknown)."""
    if not family:
        return frozenset()
    from automl import families

    try:
        return families.get(family).data_kinds
    except Exception:  # an unknown family is reported by the runner, not by a loader
        return frozenset()
