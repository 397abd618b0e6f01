"""KerasTuner side: ``search_spaces/mlp.yaml`` in ``hp`` terms, the same build function, and two small tuner hooks.

- ``MLPHyperModel.build(hp)`` mirrors the YAML (conditional params under ``hp.conditional_scope``) and builds with
  ``common.build_compiled``; ``fit`` passes the searched ``batch_size``.
- ``EnqueuedOracle`` is a ``RandomSearchOracle`` that hands out a fixed list of configs, so ``Tuner(oracle=...)``
  is KerasTuner's RandomSearch replaying exactly the configs the other arms train.
- ``timed(cls)`` adds a wall-clock deadline (no new trial after it) and a best-so-far record to any tuner class.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import keras
import keras_tuner

from benchmarks.common import OBJECTIVE, TASK, build_compiled

ACTIVATIONS = ["relu", "gelu", "tanh", "sigmoid", "elu", "swish"]


def kt_params(hp: keras_tuner.HyperParameters) -> dict[str, Any]:
    """``search_spaces/mlp.yaml`` (classification) as KerasTuner hyperparameters -> automl's flat params dict."""
    params: dict[str, Any] = {
        "n_layers": hp.Int("n_layers", 1, 4),
        "units": hp.Int("units", 16, 512, sampling="log"),
        "width_shape": hp.Choice("width_shape", ["constant", "funnel"]),
        "activation": hp.Choice("activation", ACTIVATIONS),
        "dropout": hp.Float("dropout", 0.0, 0.5),
        "l2": hp.Float("l2", 1.0e-7, 1.0e-2, sampling="log"),
        "batch_norm": hp.Boolean("batch_norm"),
        "batch_size": hp.Choice("batch_size", [16, 32, 64, 128, 256]),
        "loss": hp.Fixed("loss", "cross_entropy"),
        "optimizer": hp.Choice("optimizer", ["adam", "adamw", "sgd", "rmsprop"]),
        "learning_rate": hp.Float("learning_rate", 1.0e-4, 3.0e-2, sampling="log"),
    }
    with hp.conditional_scope("optimizer", ["sgd"]):
        momentum = hp.Float("momentum", 0.0, 0.99)
    with hp.conditional_scope("optimizer", ["adamw"]):
        weight_decay = hp.Float("weight_decay", 1.0e-6, 1.0e-2, sampling="log")
    if params["optimizer"] == "sgd":
        params["momentum"] = momentum
    if params["optimizer"] == "adamw":
        params["weight_decay"] = weight_decay
    return params


class MLPHyperModel(keras_tuner.HyperModel):
    """automl's MLP through KerasTuner: same builder, same compile, searched batch size."""

    def __init__(self, spec: Any) -> None:
        super().__init__(name="mlp")
        self.spec = spec

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        return build_compiled(kt_params(hp), self.spec)

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        return model.fit(*args, batch_size=hp.get("batch_size"), **kwargs)


def objective() -> keras_tuner.Objective:
    return keras_tuner.Objective(OBJECTIVE, direction="max")


class EnqueuedOracle(keras_tuner.oracles.RandomSearchOracle):
    """RandomSearch whose "random" draws are a fixed list of configs, one per trial, in order."""

    def __init__(self, configs: list[Mapping[str, Any]], **kwargs: Any) -> None:
        super().__init__(objective=objective(), max_trials=len(configs), **kwargs)
        self.configs = [dict(config) for config in configs]

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        index = len(self.trials)
        if index >= len(self.configs):
            return {"status": keras_tuner.engine.trial.TrialStatus.STOPPED, "values": None}
        return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING, "values": dict(self.configs[index])}


class ReplayTuner(keras_tuner.Tuner):
    """``Tuner`` + ``EnqueuedOracle`` (= RandomSearch replaying configs); ``gate(i)`` runs before trial ``i``."""

    def __init__(self, *args: Any, gate: Callable[[int], None] | None = None, seed: int = 0, **kwargs: Any) -> None:
        self.gate = gate
        self.seed = seed
        super().__init__(*args, **kwargs)

    def pre_create_trial(self) -> None:
        if self.gate is not None:
            self.gate(len(self.oracle.trials))

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        keras.utils.set_random_seed(self.seed * 100_003 + int(trial.trial_id))  # automl's per-trial seed
        return super().run_trial(trial, *args, **kwargs)


def timed(tuner_class: type) -> type:
    """``tuner_class`` with ``deadline`` (perf_counter; no new trial after it) and ``finished`` (time, score)."""

    class Timed(tuner_class):  # type: ignore[misc, valid-type]
        deadline: float = float("inf")

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.finished: list[tuple[float, float | None]] = []

        def pre_create_trial(self) -> None:
            super().pre_create_trial()
            if time.perf_counter() >= self.deadline:
                # Oracle.create_trial answers STOPPED once max_trials trials exist
                self.oracle.max_trials = max(1, len(self.oracle.trials))

        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)
            done = self.oracle.trials.get(trial.trial_id, trial)
            self.finished.append((time.perf_counter(), None if done.score is None else float(done.score)))

    Timed.__name__ = f"Timed{tuner_class.__name__}"
    return Timed


TUNERS: dict[str, Callable[..., Any]] = {
    "kt_random": keras_tuner.RandomSearch,
    "kt_bayes": keras_tuner.BayesianOptimization,
    "kt_hyperband": keras_tuner.Hyperband,
}


def make_tuner(method: str, spec: Any, seed: int, epochs: int, directory: str) -> Any:
    """One of KerasTuner's tuners on the mirrored space, with the deadline hook; ``TASK`` is classification."""
    assert TASK == "classification"
    common = {
        "hypermodel": MLPHyperModel(spec),
        "objective": objective(),
        "seed": seed + 1,  # KerasTuner treats seed=0 as "no seed"
        "directory": directory,
        "project_name": method,
        "overwrite": True,
    }
    cls = timed(TUNERS[method])
    if method == "kt_hyperband":
        return cls(max_epochs=epochs, factor=3, hyperband_iterations=10_000, **common)
    return cls(max_trials=100_000, **common)
