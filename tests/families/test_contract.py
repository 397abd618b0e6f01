"""The contract every registered family keeps: built at its space's extremes, it fits, predicts and reloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from automl import families
from automl.data import DataSpec
from automl.export import load_keras_file
from automl.spaces import Space, load_default_space
from automl.training import compile_model

N = 24
KIND_TASK = {
    "table": "classification",
    "image": "classification",
    "sequence": "classification",
    "text": "classification",
    "series": "regression",
}


def tiny_data(kind: str) -> tuple[DataSpec, np.ndarray, np.ndarray]:
    """A few examples of one data kind, as its loader hands them to a family (already encoded)."""
    rng = np.random.default_rng(0)
    task = KIND_TASK[kind]
    if kind == "series":
        spec = DataSpec(kind="series", task=task, input_shape=(12, 2), output_dim=3, extra={"target_index": 1})
        return spec, rng.normal(size=(N, 12, 2)).astype("float32"), rng.normal(size=(N, 3)).astype("float32")
    y = (np.arange(N) % 3).astype("int32")
    if kind == "text":
        spec = DataSpec(kind=kind, task=task, input_shape=(9,), n_classes=3, extra={"vocab_size": 50})
        return spec, rng.integers(0, 50, size=(N, 9)).astype("int32"), y
    shapes = {"table": (6,), "image": (8, 8, 1), "sequence": (10, 3)}
    spec = DataSpec(kind=kind, task=task, input_shape=shapes[kind], n_classes=3)
    return spec, rng.normal(size=(N, *shapes[kind])).astype("float32"), y


def extreme_params(space: Space, task: str, end: int) -> dict[str, Any]:
    """Every param at its first (``end=0``) or last (``end=-1``) extreme; conditions follow those choices."""
    values = {name: param.extremes(task)[end] for name, param in space.params.items()}
    return space.suggest(optuna.trial.FixedTrial(values), task)


def cases() -> list[Any]:
    """Each family at both extremes on its first data kind; its other kinds alternate high and low (time)."""
    params = []
    for name in families.names():
        if not families.get(name).supervised:  # translators: tests/generative/test_translation.py
            continue
        for i, kind in enumerate(sorted(families.get(name).data_kinds & set(KIND_TASK))):
            for end in (0, -1) if i == 0 else ((-1,) if i % 2 else (0,)):
                params.append(pytest.param(name, kind, end, id=f"{name}-{kind}-{'low' if end == 0 else 'high'}"))
    return params


def test_every_family_takes_some_kind_of_data_the_suite_can_make() -> None:
    for name in families.names():
        assert families.get(name).data_kinds & set(KIND_TASK), name


@pytest.mark.parametrize(("name", "kind", "end"), cases())
def test_builds_fits_predicts_and_reloads_at_the_extremes(name: str, kind: str, end: int, tmp_path: Path) -> None:
    family = families.get(name)
    spec, x, y = tiny_data(kind)
    params = extreme_params(load_default_space(name), spec.task, end)
    model = family.build(params, spec)
    compile_model(model, params, spec.task)
    history = model.fit(x, y, epochs=1, batch_size=int(params.get("batch_size", 8)), verbose=0)
    assert len(history.history["loss"]) == 1

    predicted = np.asarray(model.predict(x, verbose=0))
    width = spec.n_classes if spec.task == "classification" else spec.output_dim
    assert predicted.shape == (N, width)
    assert np.isfinite(predicted).all()
    if spec.task == "classification":
        np.testing.assert_allclose(predicted.sum(axis=1), 1.0, rtol=1e-4)

    # trials are checkpointed and the best one reloaded with safe_mode on: no Lambda, custom layers registered
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = load_keras_file(path)
    np.testing.assert_allclose(np.asarray(reloaded.predict(x, verbose=0)), predicted, rtol=1e-4, atol=1e-5)
