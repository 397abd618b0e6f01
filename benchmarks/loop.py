"""The hand-written baseline: an Optuna study in sqlite, one nested MLflow run per trial, metrics logged per epoch.

Written the way a user would write it from the Optuna and MLflow docs, without automl: ``mlflow.start_run
(nested=True)``, ``mlflow.log_params``, ``mlflow.log_metrics(..., step=epoch)`` from a Keras callback, and
``EarlyStopping(restore_best_weights=True)`` to end on the best epoch. It shares only the build function
(``common.build_compiled``) and the data split with automl.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import mlflow
import optuna

from benchmarks.common import OBJECTIVE, build_compiled, suggest_mlp, test_accuracy


class MLflowEpochLogger(keras.callbacks.Callback):
    """Log every epoch's Keras logs to the active MLflow run, ``step=epoch``."""

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        mlflow.log_metrics({key: float(value) for key, value in (logs or {}).items()}, step=epoch)


class LoopSearch:
    """One study: sqlite Optuna + sqlite MLflow under ``workdir``, TPE, no pruning, best weights kept in memory."""

    def __init__(self, workdir: Path, dataset: Any, epochs: int, seed: int, name: str = "loop") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.dataset = dataset
        self.epochs = epochs
        self.seed = seed
        mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
        mlflow.set_experiment(name)
        self.study = optuna.create_study(
            study_name=name,
            storage=f"sqlite:///{workdir / 'optuna.db'}",
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.NopPruner(),
        )
        self.parent = mlflow.start_run(run_name=name)
        self.best_value: float | None = None
        self.best_params: dict[str, Any] | None = None
        self.best_weights: list[Any] | None = None
        self.finished: list[tuple[float, float | None]] = []  # (perf_counter when the trial ended, its value)

    def objective(self, trial: optuna.Trial) -> float:
        params = suggest_mlp(trial)
        data = self.dataset
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            mlflow.log_params(params)
            keras.utils.set_random_seed(self.seed * 100_003 + trial.number)  # automl's per-trial seed
            model = build_compiled(params, data.spec)
            history = model.fit(
                data.x_train,
                data.y_train,
                validation_data=(data.x_val, data.y_val),
                epochs=self.epochs,
                batch_size=params["batch_size"],
                verbose=0,
                callbacks=[
                    MLflowEpochLogger(),
                    keras.callbacks.EarlyStopping(
                        monitor=OBJECTIVE, mode="max", patience=self.epochs, restore_best_weights=True
                    ),
                ],
            )
            value = float(max(history.history[OBJECTIVE]))
            mlflow.log_metric(f"best_{OBJECTIVE}", value)
        if self.best_value is None or value > self.best_value:
            self.best_value, self.best_params, self.best_weights = value, params, model.get_weights()
        keras.utils.clear_session()
        return value

    def optimize(self, n_trials: int | None = None, timeout: float | None = None) -> None:
        self.study.optimize(self.objective, n_trials=n_trials, timeout=timeout, callbacks=[self._record])

    def _record(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        value = trial.value if trial.state == optuna.trial.TrialState.COMPLETE else None
        self.finished.append((time.perf_counter(), value))

    def finish(self) -> float | None:
        """Close the parent run; the test accuracy of the best trial's network (rebuilt from kept weights)."""
        mlflow.end_run()
        if self.best_params is None:
            return None
        model = build_compiled(self.best_params, self.dataset.spec)
        model.set_weights(self.best_weights)
        return test_accuracy(model, self.dataset)
