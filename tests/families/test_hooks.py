"""Every hook of every family on the family's own tasks: build, compile, fit, export, package and evaluate.

``test_contract.py`` builds each family at its space's extremes on supervised data; this file runs what happens
after the fit, as the search's registration does it, on one small demo data set per task the family declares.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest

from automl import families
from automl.data import adapt_input, load_dataset, predict_inputs
from automl.runner import package
from automl.spaces import load_default_space
from automl.training import TrainingData, resolve_metric, train

# (family, task) -> the data it is tried on; None: the data's own task. Every family also trains a supervised
# model on a labelled table (the generative ones put a head on their encoder or discriminator).
CASES: dict[tuple[str, str | None], str] = {
    ("mlp", None): "demo:wine",
    ("cnn", None): "demo:digits-images",
    ("resnet", None): "demo:digits-images",
    ("rnn", None): "demo:text-sentiment",
    ("autoencoder", "classification"): "demo:wine",
    ("autoencoder", None): "demo:wine",  # without --target: its default task, reconstruction
    ("autoencoder", "anomaly"): "plain.csv",
    ("vae", "classification"): "demo:wine",
    ("vae", "density"): "plain.csv",
    ("gan", "classification"): "demo:wine",
    ("gan", "generation"): "demo:digits-images",
    ("autorec", "classification"): "demo:wine",
    ("autorec", "rating"): "demo:ratings",
    ("cyclegan", None): "demo:digit-domains",  # without --task: translation, at 8x8 (time)
    ("stargan", None): "demo:digit-styles",
}
SUPERVISED = (None, "classification", "regression")


def test_every_task_a_family_declares_is_tried() -> None:
    for name in families.names():
        family = families.get(name)
        if family.supervised:
            assert any((name, task) in CASES for task in SUPERVISED), f"{name} on supervised data"
        for task in family.metrics or {}:
            covered = (name, task) in CASES or ((name, None) in CASES and family.default_task == task)
            assert covered, f"{name} declares {task}: add a data set for it here"


def _low_params(name: str, task: str) -> dict[str, Any]:
    space = load_default_space(name)
    values = {param: spec.extremes(task)[0] for param, spec in space.params.items()}
    return space.suggest(optuna.trial.FixedTrial(values), task)


def _plain_csv(folder: Path) -> str:
    """A table without a label: 120 rows of 5 correlated columns."""
    rng = np.random.default_rng(1)
    path = folder / "plain.csv"
    pd.DataFrame(rng.normal(size=(120, 2)) @ rng.normal(size=(2, 5)), columns=list("abcde")).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(("name", "task"), list(CASES), ids=[f"{n}-{t or 'supervised'}" for n, t in CASES])
def test_hooks_after_the_fit(name: str, task: str | None, tmp_path: Path) -> None:
    family = families.get(name)
    source = CASES[(name, task)]
    if source == "plain.csv":
        source = _plain_csv(tmp_path)
    small = {"image_size": (8, 8)} if source.startswith("demo:digit-") else {}
    dataset = load_dataset(source, family=name, seed=0, **small, **({"task": task} if task else {}))
    metric, direction = resolve_metric(dataset.task, None, family)
    params = _low_params(name, dataset.task)
    model, log = train(family, params, dataset, TrainingData.from_dataset(dataset), 1, f"val_{metric}", direction)
    assert log.best_value is not None and np.isfinite(log.best_value)

    packaged = package(model, family, dataset, "hooks", 0, "checkpoint")
    assert packaged.metadata["study"] == "hooks" and packaged.metadata["weights"] == "checkpoint"
    assert packaged.test_metrics and all(np.isfinite(v) for v in packaged.test_metrics.values())
    if dataset.task in ("classification", "regression"):
        assert set(packaged.test_metrics) >= ({"test_accuracy"} if dataset.task == "classification" else {"test_rmse"})
    else:
        declared = family.metrics[dataset.metadata.get("task", dataset.task)]  # type: ignore[index]
        assert any(f"test_{m}" in packaged.test_metrics for m in declared), packaged.test_metrics
    # the registered network answers its own input example, as the pyfunc model will
    example = packaged.example
    outputs = predict_inputs(packaged.model, adapt_input(packaged.metadata, example))
    rows = len(next(iter(example.values()))) if isinstance(example, dict) else len(example)  # a translator's dict
    assert len(outputs) == rows and np.isfinite(np.asarray(outputs, dtype="float64")).all()


def test_the_best_epochs_weights_are_copied_only_when_the_model_could_be_kept() -> None:
    """A model that cannot beat the study's best comes back at its last epoch (no copy per improving epoch); one
    that can comes back at its best epoch's weights."""
    import keras

    dataset = load_dataset("demo:wine")
    family = families.get("mlp")
    params = {
        "n_layers": 2,
        "units": 64,
        "width_shape": "constant",
        "activation": "relu",
        "dropout": 0.0,
        "l2": 0.0,
        "batch_norm": False,
        "batch_size": 16,
        "optimizer": "adam",
        "learning_rate": 0.01,
        "loss": "cross_entropy",
    }
    data = TrainingData.from_dataset(dataset)
    seen: list[list[np.ndarray]] = []
    original_fit = family.fit

    def fit_watching(model: Any, params: Any, data: Any, epochs: int, callbacks: list[Any]) -> Any:
        class Watch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                seen.append(self.model.get_weights())

        from automl.training import fit_model

        return (original_fit or fit_model)(model, params, data, epochs, [*callbacks, Watch()])

    family = dataclasses.replace(family, fit=fit_watching)
    for worth_keeping in (None, lambda value: False):
        seen.clear()
        keras.utils.set_random_seed(0)
        model, log = train(family, params, dataset, data, 6, "val_accuracy", "maximize", worth_keeping=worth_keeping)
        assert log.best_epoch is not None and len(seen) == 6
        expected = seen[log.best_epoch] if worth_keeping is None else seen[-1]
        assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), expected, strict=True))
        assert log.best_epoch < 5, "the best epoch is not the last: the test tells the two apart"
