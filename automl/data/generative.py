"""Data for the generative tasks: reconstruction, anomaly detection (normal rows only in training), density.

Any source the other loaders read (a table, images, a demo) becomes one of these when ``--task`` names such a task,
or when the family's default task applies (a table given without ``--target``). The encoded inputs stay as the
other loaders make them; only the labels and the training rows change.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl.data import Dataset, DataSpec, register_adapter, register_loader
from automl.data.demo import register_demo
from automl.errors import DataError

NO_TARGET = "__automl_no_target__"


def own_tasks() -> frozenset[str]:
    """The tasks the registered families bring (reconstruction, generation, rating, ...): not a supervised one."""
    from automl import families

    return frozenset(families.declared_tasks()) - set(families.SUPERVISED_TASKS)


def _family_default_task(family: str | None) -> str | None:
    if not family:
        return None
    from automl import families

    try:
        return families.get(family).default_task
    except Exception:  # an unknown family is reported by the runner, not by a loader
        return None


def generative_task(options: dict[str, Any]) -> str | None:
    """The unsupervised task asked for: ``--task``, else the family's default when no ``--target`` is given."""
    task = options.get("task")
    own = own_tasks()
    if task in own:
        return str(task)
    if task is None and options.get("target") is None:
        default = _family_default_task(options.get("family"))
        return default if default in own else None
    return None


@register_loader(lambda source: True)
def load_generative(source: str, **options: Any) -> Dataset:
    """An unsupervised data set when one is asked for, else whatever the next loader that takes ``source`` makes."""
    from automl.data import _LOADERS

    task = generative_task(options)
    if task == "rating" and not source.startswith("demo:"):
        from automl.data.ratings import load_ratings_file

        return load_ratings_file(source, **options)
    if task is not None:
        return unsupervised_dataset(source, task, **{k: v for k, v in options.items() if k != "task"})
    for matches, loader in _LOADERS:
        if loader is not load_generative and matches(source):
            return loader(source, **options)
    raise DataError(f"{source}: unsupported data source (use a .csv or .parquet file, or demo:NAME)")


def _load_labeled(source: str, options: dict[str, Any]) -> Dataset:
    """The source as a supervised loader reads it; a table without ``--target`` gets a placeholder target."""
    from automl.data import _LOADERS
    from automl.data.tabular import TABLE_SUFFIXES

    base = {**options, "task": None}
    if options.get("target") is None and source.lower().endswith(TABLE_SUFFIXES):
        from automl.data.frames import read_frame
        from automl.data.tabular import table_dataset

        frame = read_frame(source)
        frame[NO_TARGET] = 0.0
        splits = {k: options[k] for k in ("seed", "val_fraction", "test_fraction") if k in options}
        return table_dataset(frame, NO_TARGET, name=source.rsplit("/", 1)[-1], task="regression", **splits)
    for matches, loader in _LOADERS:
        if loader is not load_generative and matches(source):
            return loader(source, **base)
    raise DataError(f"{source}: unsupported data source (use a .csv or .parquet file, a folder, or demo:NAME)")


def unsupervised_dataset(source: str, task: str, normal_label: Any = None, **options: Any) -> Dataset:
    """Load ``source`` and turn it into a data set for ``task``."""
    base = _load_labeled(source, {**options, "normal_label": normal_label})
    if base.task in own_tasks():  # a demo made for the task (demo:digits-anomaly, demo:ratings)
        return base
    if task == "rating":  # not a table of ratings: nothing to make one from
        raise DataError(
            f"{source}: the 'rating' task needs a table of user, item and rating columns, and this is "
            f"{base.task} data (give --task {base.task} to train on its target)"
        )
    return as_unsupervised(base, task, normal_label)


def as_unsupervised(base: Dataset, task: str, normal_label: Any = None) -> Dataset:
    """``base`` for an unsupervised task; for ``anomaly`` with labels, training keeps only the normal rows.

    Labels become 0 (normal) / 1 (anomaly) for ``anomaly``; other tasks keep class indices (for conditional models).
    A data set without labels detects anomalies too, but its objective is then the reconstruction error.
    """
    labeled = base.classes is not None and base.metadata.get("target") != NO_TARGET
    extra: dict[str, Any] = {"anomaly": task == "anomaly"}
    metadata = {**base.metadata, "task": task, "classes": None}
    y_train, y_val, y_test = base.y_train, base.y_val, base.y_test
    x_train = base.x_train
    if task == "anomaly" and labeled:
        classes = list(base.classes or [])
        if normal_label is None:
            normal = int(np.bincount(base.y_train).argmax())
        else:
            matches = [i for i, c in enumerate(classes) if str(c) == str(normal_label)]
            if not matches:
                raise DataError(
                    f"{base.name}: --normal-label '{normal_label}' is not a label "
                    f"(labels: {', '.join(map(str, classes))})"
                )
            normal = matches[0]
        y_train, y_val, y_test = ((y != normal).astype("int32") for y in (base.y_train, base.y_val, base.y_test))
        if not (y_val.any() and (~y_val.astype(bool)).any()):
            raise DataError(f"{base.name}: the validation split needs both normal and anomalous rows for ROC AUC")
        keep = y_train == 0
        x_train, y_train = _rows(base.x_train, keep), y_train[keep]
        metadata["normal_label"] = classes[normal]
        extra["labeled"] = True
    elif task == "anomaly":
        task = "reconstruction"  # nothing to rank against: the objective is the reconstruction error
        metadata["task"] = "anomaly"
        extra["labeled"] = False
    else:
        extra["labeled"] = labeled
        extra["n_labels"] = len(base.classes) if labeled and base.classes else 0
        if labeled and base.classes:  # the names of the classes (a conditional generator's labels, domains)
            metadata["labels"] = list(base.classes)
    spec = DataSpec(
        kind=base.spec.kind,
        task=task,
        input_shape=base.spec.input_shape,
        n_classes=base.spec.n_classes if labeled else None,
        extra={**base.spec.extra, **extra},
    )
    description = {
        **base.description,
        "task": spec.task,
        "splits": {"train": len(y_train), "val": len(y_val), "test": len(y_test)},
    }
    return dataclasses.replace(
        base,
        spec=spec,
        x_train=x_train,
        y_train=y_train,
        y_val=y_val,
        y_test=y_test,
        metadata=metadata,
        description=description,
        y_scale=None,
        classes=None,
    )


def _rows(x: Any, keep: np.ndarray) -> Any:
    if isinstance(x, dict):
        return {k: np.asarray(v)[keep] for k, v in x.items()}
    return np.asarray(x)[keep]


@register_demo("digits-anomaly")
def digits_anomaly(anomaly_digit: int = 7, **options: Any) -> Dataset:
    """scikit-learn's digits as a table; one digit (7) is the anomaly, the other nine are normal.

    Border pixels that are ink in under 2% of the images are dropped: standardized, they are all but constant in
    training and explode on the rare test row that has ink there.
    """
    import sklearn.datasets

    from automl.data.tabular import table_dataset

    bunch = sklearn.datasets.load_digits(as_frame=True)
    frame: pd.DataFrame = bunch.frame.copy()
    pixels = [c for c in frame.columns if c != "target"]
    frame = frame.drop(columns=[c for c in pixels if (frame[c] != 0).mean() < 0.02])
    frame["label"] = np.where(frame.pop("target") == anomaly_digit, "anomaly", "normal")
    keep = {k: v for k, v in options.items() if k in ("seed", "val_fraction", "test_fraction")}
    base = table_dataset(frame, "label", name="demo:digits-anomaly", **keep)
    return as_unsupervised(base, "anomaly", options.get("normal_label") or "normal")


def draw_latent(metadata: dict[str, Any], n: int, label: int | None = None, seed: int = 0) -> np.ndarray:
    """``n`` inputs for a generator: standard normal latent values, plus one-hot labels when it is conditional
    (``label``, else every label in turn)."""
    if metadata.get("kind") != "latent":
        raise DataError(f"not a generator: it takes {metadata.get('kind')} data, not latent vectors")
    if n < 1:
        raise DataError(f"-n must be at least 1 (got {n})")
    latent, domains = int(metadata["latent_size"]), int(metadata.get("n_labels", 0))
    z = np.random.default_rng(seed).normal(size=(n, latent)).astype("float32")
    if not domains:
        return z
    if label is not None and not 0 <= label < domains:
        raise DataError(f"--label {label}: this generator has labels 0..{domains - 1}")
    labels = np.full(n, label) if label is not None else np.arange(n) % domains
    return np.concatenate([z, np.eye(domains, dtype="float32")[labels]], axis=1)


def save_samples(samples: np.ndarray, destination: Path) -> None:
    """Write generated samples: a ``.png`` grid (images), ``.npz`` arrays or ``.csv`` rows."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    suffix = destination.suffix.lower()
    if suffix == ".png":
        if samples.ndim != 4:
            raise DataError(f"--output {destination}: this generator makes table rows; write them to a .csv or .npz")
        from PIL import Image

        from automl.families._quality import image_grid

        grid = (image_grid(samples) * 255).round().astype("uint8")
        Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(destination)
    elif suffix == ".npz":
        np.savez_compressed(destination, x=samples)
    elif suffix == ".csv":
        pd.DataFrame(samples.reshape(len(samples), -1)).add_prefix("x_").to_csv(destination, index=False)
    else:
        raise DataError(f"--output {destination}: expected a .png, .npz or .csv file")


@register_adapter("latent")
def latent_to_inputs(metadata: dict[str, Any], raw: Any) -> np.ndarray:
    """A generator's input: rows of latent values (plus one-hot label columns for a conditional one)."""
    x = np.asarray(raw.to_numpy() if isinstance(raw, pd.DataFrame) else raw, dtype="float32")
    width = int(metadata["latent_size"]) + int(metadata.get("n_labels", 0))
    if x.ndim != 2 or x.shape[1] != width:
        raise DataError(f"generator input: expected rows of {width} values (got shape {x.shape})")
    return x
