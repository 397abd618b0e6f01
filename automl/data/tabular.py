"""Tables (CSV, Parquet, DataFrames): task detection, stratified splits, preprocessing inside the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from automl.data import Dataset, DataSpec, content_hash, predict_inputs, register_adapter, register_loader
from automl.errors import DataError

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
MAX_CLASSES_FOR_INTEGER_TARGET = 20
MAX_CATEGORIES = 200


def _is_table_file(source: str) -> bool:
    return Path(source).suffix.lower() in TABLE_SUFFIXES


@register_loader(_is_table_file)
def load_table_file(source: str, target: str | None = None, **options: Any) -> Dataset:
    """Read a CSV or Parquet file and split it."""
    path = Path(source)
    if not path.is_file():
        raise DataError(f"{source}: data file not found")
    try:
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise DataError(f"{source}: cannot read as a table: {str(exc).splitlines()[0]}") from None
    if target is None:
        raise DataError(f"{source}: --target is required for a table (columns: {', '.join(map(str, frame))})")
    return table_dataset(frame, target, name=path.name, **options)


def detect_task(y: pd.Series) -> str:
    """Classification for strings, bools and integer targets with few values; regression otherwise."""
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    values = y.to_numpy()
    is_integral = bool(np.all(np.mod(values, 1) == 0))
    return "classification" if is_integral and y.nunique() <= MAX_CLASSES_FOR_INTEGER_TARGET else "regression"


def _split(n: int, y: np.ndarray | None, seed: int, val_fraction: float, test_fraction: float) -> tuple:
    index = np.arange(n)

    def stratify(labels: np.ndarray | None) -> np.ndarray | None:
        if labels is None:
            return None
        _, counts = np.unique(labels, return_counts=True)
        return labels if counts.min() >= 2 else None

    rest, test = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=stratify(y))
    rel_val = val_fraction / (1.0 - test_fraction)
    train, val = train_test_split(
        rest, test_size=rel_val, random_state=seed, stratify=stratify(None if y is None else y[rest])
    )
    return train, val, test


def table_dataset(
    frame: pd.DataFrame,
    target: str,
    name: str,
    task: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    **_: Any,
) -> Dataset:
    """Build a ``Dataset`` from a DataFrame with a target column."""
    if target not in frame.columns:
        raise DataError(f"{name}: target column '{target}' not found (columns: {', '.join(map(str, frame))})")
    missing = int(frame[target].isna().sum())
    if missing:
        raise DataError(f"{name}: target column '{target}' has {missing} missing value(s); drop or fill them")
    features = frame.drop(columns=[target]).replace([np.inf, -np.inf], np.nan)
    if features.shape[1] == 0:
        raise DataError(f"{name}: no feature columns besides target '{target}'")
    if len(frame) < 10:
        raise DataError(f"{name}: only {len(frame)} rows; at least 10 are needed to split train/val/test")
    empty = [str(c) for c in features if features[c].isna().all()]
    if empty:
        raise DataError(f"{name}: column(s) {', '.join(empty)} have no values at all; nothing to impute from")
    y_raw = frame[target]
    task = task or detect_task(y_raw)
    if task == "regression" and not pd.api.types.is_numeric_dtype(y_raw):
        raise DataError(f"{name}: target column '{target}' is not numeric, so it cannot be a regression target")

    numeric = [str(c) for c in features if pd.api.types.is_numeric_dtype(features[c])]
    categorical = [str(c) for c in features if str(c) not in numeric]
    features.columns = [str(c) for c in features.columns]

    classes: list[Any] | None = None
    if task == "classification":
        uniques = pd.unique(y_raw)
        classes = sorted((u.item() if hasattr(u, "item") else u for u in uniques), key=lambda v: (str(type(v)), v))
        if len(classes) < 2:
            raise DataError(f"{name}: target column '{target}' has a single class; nothing to classify")
        lookup = {c: i for i, c in enumerate(classes)}
        y_all = np.array([lookup[v.item() if hasattr(v, "item") else v] for v in y_raw], dtype="int32")
        train, val, test = _split(len(frame), y_all, seed, val_fraction, test_fraction)
    else:
        y_all = y_raw.to_numpy(dtype="float32")
        train, val, test = _split(len(frame), None, seed, val_fraction, test_fraction)

    fills = features.iloc[train][numeric].median().fillna(0.0).to_numpy(dtype="float64") if numeric else None
    vocab = {
        col: [str(v) for v in _text(features.iloc[train][col]).value_counts().index[:MAX_CATEGORIES]]
        for col in categorical
    }
    metadata: dict[str, Any] = {
        "kind": "table",
        "task": task,
        "target": target,
        "numeric_columns": numeric,
        "categorical_columns": categorical,
        "classes": classes,
    }
    means = variances = None
    if fills is not None:  # there are numeric columns
        imputed = np.where(
            np.isnan(features.iloc[train][numeric].to_numpy("float64")), fills, features.iloc[train][numeric]
        )
        means, variances = imputed.mean(axis=0), imputed.var(axis=0)

    def make_preprocessor() -> Any:
        return build_preprocessor(numeric, categorical, fills, means, variances, vocab)

    preprocessor = make_preprocessor()

    def encode(rows: np.ndarray) -> np.ndarray:
        inputs = frame_to_inputs(metadata, features.iloc[rows])
        return predict_inputs(preprocessor, inputs).astype("float32")

    y_scale = None
    if task == "regression":
        mean, std = float(y_all[train].mean()), float(y_all[train].std() or 1.0)
        y_scale = (mean, std)
    x_train = encode(train)
    spec = DataSpec(
        kind="table",
        task=task,
        input_shape=(x_train.shape[1],),
        n_classes=len(classes) if classes else None,
    )
    description = {
        "name": name,
        "rows": len(frame),
        "columns": list(features.columns),
        "numeric_columns": numeric,
        "categorical_columns": categorical,
        "task": task,
        "target": target,
        "classes": classes,
        "splits": {"train": len(train), "val": len(val), "test": len(test)},
        "seed": seed,
        "sha256": content_hash(frame),
    }
    return Dataset(
        name=name,
        spec=spec,
        x_train=x_train,
        y_train=y_all[train],
        x_val=encode(val),
        y_val=y_all[val],
        x_test=encode(test),
        y_test=y_all[test],
        raw_test=features.iloc[test].reset_index(drop=True),
        raw_example=features.iloc[train[:5]].reset_index(drop=True),
        make_preprocessor=make_preprocessor,
        metadata=metadata,
        description=description,
        classes=classes,
        y_scale=y_scale,
    )


def _text(column: pd.Series) -> pd.Series:
    return column.astype(object).where(column.notna(), "").astype(str)


def build_preprocessor(
    numeric: list[str],
    categorical: list[str],
    fills: np.ndarray | None,
    means: np.ndarray | None,
    variances: np.ndarray | None,
    vocab: dict[str, list[str]],
) -> Any:
    """Raw columns -> one float vector: impute + normalize numbers, one-hot strings (unknown -> OOV)."""
    import keras

    from automl.layers import Impute

    inputs: dict[str, Any] = {}
    parts = []
    if numeric:
        x = keras.Input(shape=(len(numeric),), name="numeric", dtype="float32")
        inputs["numeric"] = x
        assert fills is not None  # measured on the numeric columns of the training split
        h = Impute([float(v) for v in fills], name="impute")(x)
        parts.append(keras.layers.Normalization(mean=means, variance=variances, name="normalize")(h))
    for i, column in enumerate(categorical):
        s = keras.Input(shape=(1,), name=f"cat_{i}", dtype="string")
        inputs[f"cat_{i}"] = s
        parts.append(keras.layers.StringLookup(vocabulary=vocab[column], output_mode="one_hot", name=f"lookup_{i}")(s))
    output = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="features")(parts)
    return keras.Model(inputs, output, name="preprocess")


def numeric_values(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The columns as float32; a value that is not a number is refused (column, row, value), never made NaN.

    Missing values (empty, NaN) stay NaN: the model imputes them as it did in training.
    """
    if len(frame) == 0:
        raise DataError("input has no rows")
    values = frame[columns]
    numbers = values.apply(pd.to_numeric, errors="coerce")
    bad = numbers.isna() & values.notna() & ~values.astype(str).apply(lambda c: c.str.strip().eq("")).to_numpy()
    if bad.to_numpy().any():
        column = str(bad.any().idxmax())
        row = int(np.argmax(bad[column].to_numpy()))
        raise DataError(
            f"column '{column}' must be numeric: row {row + 1} holds {values[column].iloc[row]!r} "
            f"({int(bad[column].sum())} such value(s) in the column)"
        )
    return numbers.to_numpy(dtype="float32")


@register_adapter("table")
def frame_to_inputs(metadata: dict[str, Any], frame: Any) -> dict[str, np.ndarray]:
    """A DataFrame of raw feature columns -> the exported model's named inputs."""
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame)
    frame.columns = [str(c) for c in frame.columns]
    needed = metadata["numeric_columns"] + metadata["categorical_columns"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"input is missing column(s): {', '.join(missing)}")
    if len(frame) == 0:
        raise DataError("input has no rows")
    inputs: dict[str, np.ndarray] = {}
    if metadata["numeric_columns"]:
        inputs["numeric"] = numeric_values(frame, metadata["numeric_columns"])
    for i, column in enumerate(metadata["categorical_columns"]):
        inputs[f"cat_{i}"] = _text(frame[column]).to_numpy(dtype=str).reshape(-1, 1)
    return inputs
