"""Ratings for collaborative filtering: a CSV of user, item, rating -> an item x user matrix and held-out pairs.

Ratings are split at random into train/val/test; the matrix holds the training ratings only (centered on their
mean, missing = 0) with a mask of which entries are observed. ``demo:ratings`` is generated (low-rank tastes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from automl.data import Dataset, DataSpec, content_hash, register_adapter
from automl.data.demo import register_demo
from automl.errors import DataError

RATING_COLUMNS = ("user", "item", "rating")


def ratings_dataset(
    frame: pd.DataFrame,
    name: str,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    **_: Any,
) -> Dataset:
    """Split the ratings, index users and items (from training ratings), build the centered training matrix."""
    missing = [c for c in RATING_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{name}: rating data needs columns user, item, rating (missing: {', '.join(missing)})")
    frame = frame[list(RATING_COLUMNS)].dropna()
    ratings = pd.to_numeric(frame["rating"], errors="coerce")
    if ratings.isna().any():
        raise DataError(f"{name}: column 'rating' has {int(ratings.isna().sum())} non-numeric value(s)")
    if len(frame) < 30:
        raise DataError(f"{name}: only {len(frame)} ratings; at least 30 are needed to split train/val/test")
    order = np.random.default_rng(seed).permutation(len(frame))
    n_test, n_val = int(len(frame) * test_fraction), int(len(frame) * val_fraction)
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    users = sorted(frame["user"].iloc[train].astype(str).unique())
    items = sorted(frame["item"].iloc[train].astype(str).unique())
    metadata: dict[str, Any] = {"kind": "ratings", "task": "rating", "users": users, "items": items, "classes": None}
    values = ratings.to_numpy(dtype="float32")
    mean = float(values[train].mean())
    metadata.update(mean=mean, min=float(values.min()), max=float(values.max()))
    pairs = pairs_to_indices(metadata, frame)
    matrix = np.zeros((len(items), len(users)), dtype="float32")
    mask = np.zeros_like(matrix)
    matrix[pairs[train, 1], pairs[train, 0]] = values[train] - mean
    mask[pairs[train, 1], pairs[train, 0]] = 1.0
    spec = DataSpec(
        kind="ratings",
        task="rating",
        input_shape=(len(users),),
        extra={"n_users": len(users), "n_items": len(items), "mean": mean},
    )
    raw = frame[["user", "item"]].reset_index(drop=True)
    description = {
        "name": name,
        "kind": "ratings",
        "ratings": len(frame),
        "users": len(users),
        "items": len(items),
        "task": "rating",
        "splits": {"train": len(train), "val": len(val), "test": len(test)},
        "seed": seed,
        "sha256": content_hash(frame),
    }
    return Dataset(
        name=name,
        spec=spec,
        x_train=matrix,
        y_train=mask,
        x_val=pairs[val],
        y_val=values[val] - mean,  # centered like the matrix; test ratings stay in their units
        x_test=pairs[test],
        y_test=values[test],
        raw_test=raw.iloc[test].reset_index(drop=True),
        raw_example=raw.iloc[train[:5]].reset_index(drop=True),
        make_preprocessor=lambda: None,
        metadata=metadata,
        description=description,
    )


@register_adapter("ratings")
def pairs_to_indices(metadata: dict[str, Any], raw: Any) -> np.ndarray:
    """(user, item) rows -> (N, 2) int32 indices; an unseen user or item gets the out-of-vocabulary index."""
    frame = raw if isinstance(raw, pd.DataFrame) else pd.DataFrame(raw, columns=["user", "item"])
    if "user" not in frame.columns or "item" not in frame.columns:
        raise DataError("rating input: expected columns user and item")
    users = {u: i for i, u in enumerate(metadata["users"])}
    items = {t: i for i, t in enumerate(metadata["items"])}
    u = frame["user"].astype(str).map(users).fillna(len(users)).to_numpy(dtype="int32")
    t = frame["item"].astype(str).map(items).fillna(len(items)).to_numpy(dtype="int32")
    return np.stack([u, t], axis=1)


def load_ratings_file(source: str, **options: Any) -> Dataset:
    from automl.data.frames import read_frame

    return ratings_dataset(read_frame(source), name=source.rsplit("/", 1)[-1], **_splits(options))


def _splits(options: dict[str, Any]) -> dict[str, Any]:
    return {k: options[k] for k in ("seed",) if k in options}


@register_demo("ratings")
def demo_ratings(n_users: int = 300, n_items: int = 120, density: float = 0.15, **options: Any) -> Dataset:
    """Generated ratings 1..5 from rank-3 user and item tastes plus noise; 15% of pairs are rated."""
    rng = np.random.default_rng(7)
    tastes, traits = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 3))
    bias_u, bias_i = rng.normal(scale=0.4, size=n_users), rng.normal(scale=0.6, size=n_items)
    rated = rng.uniform(size=(n_users, n_items)) < density
    u, t = np.nonzero(rated)
    score = (
        3.2 + bias_u[u] + bias_i[t] + 0.8 * np.sum(tastes[u] * traits[t], axis=1) + rng.normal(scale=0.3, size=len(u))
    )
    frame = pd.DataFrame(
        {"user": [f"u{i}" for i in u], "item": [f"i{j}" for j in t], "rating": np.clip(np.round(score), 1, 5)}
    )
    return ratings_dataset(frame, "demo:ratings", **_splits(options))
