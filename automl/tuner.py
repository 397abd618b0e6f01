"""``automl.Tuner``: KerasTuner's tuner API (``search``, ``get_best_models``, ...) on automl's Optuna study.

Swap ``keras_tuner.RandomSearch(...)`` (or ``BayesianOptimization``, ``Hyperband``) for ``automl.Tuner(...)``:
the same hypermodel, the same ``search(x, y, epochs=..., validation_data=...)``. The study, its MLflow runs and
the registered model are those ``automl search --hypermodel`` writes, so the CLI and the MLflow UI read them.
Trials run in this process on the arrays given; the caller's preprocessing stays theirs, as under KerasTuner.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import optuna

from automl.config import SearchConfig, resolve_store
from automl.errors import AutoMLError, DataError
from automl.record import trial_params

SPEC_PREFIX = "tuner:"  # a Tuner's hypermodel lives in its Python session: ``tuner:PROJECT``
# KerasTuner metric names -> automl's objective names
_ALIASES = {
    "acc": "accuracy",
    "sparse_categorical_accuracy": "accuracy",
    "categorical_accuracy": "accuracy",
    "mean_absolute_error": "mae",
    "root_mean_squared_error": "rmse",
}
_DIRECTIONS = {"max": "maximize", "min": "minimize", "maximize": "maximize", "minimize": "minimize"}
# keyword arguments of a KerasTuner tuner that automl has no counterpart for (the README lists them)
UNSUPPORTED = {
    "distribution_strategy": "use one process per GPU (automl worker) instead",
    "logger": "trials are recorded in MLflow",
    "tuner_id": "workers are named by host and process",
    "oracle": "pass sampler= and pruner= instead",
    "max_retries_per_trial": "a failed trial is recorded as failed and the search goes on",
}
# ``fit`` arguments the tuner handles itself, or that would break one value per epoch
_FIT_REFUSED = {
    "validation_freq": "the objective needs a validation value every epoch",
    "initial_epoch": "every trial trains from epoch 0",
}


class _Recompiled:
    """A hypermodel whose models are compiled again with the tuner's ``optimizer=`` and ``loss=``, as KerasTuner's
    tuner overrides a hypermodel's compile arguments. Its ``fit`` is the hypermodel's own, when it has one."""

    def __init__(self, hypermodel: Any, optimizer: Any, loss: Any) -> None:
        from automl.hypermodel import as_hypermodel, overrides_fit

        self.hypermodel = as_hypermodel(hypermodel, "automl.Tuner")
        self.__wrapped__ = hypermodel  # its source is the study's space text
        self.optimizer, self.loss = optimizer, loss
        if overrides_fit(self.hypermodel):
            self.fit = self.hypermodel.fit
        declare = getattr(self.hypermodel, "declare_hyperparameters", None)
        if callable(declare):
            self.declare_hyperparameters = declare

    def build(self, hp: Any) -> Any:
        import keras

        model = self.hypermodel.build(hp)
        optimizer = self.optimizer
        if isinstance(optimizer, keras.optimizers.Optimizer):  # a fresh one per model: its state is per model
            optimizer = type(optimizer).from_config(optimizer.get_config())
        compiled = getattr(model, "compiled", False)
        model.compile(
            optimizer=optimizer if optimizer is not None else (model.optimizer if compiled else "adam"),
            loss=self.loss if self.loss is not None else (model.loss if compiled else None),
        )
        return model


def objective_name(objective: Any) -> tuple[str, str | None]:
    """``(automl metric, direction or None)`` for ``"val_accuracy"`` or ``keras_tuner.Objective(...)``."""
    if isinstance(objective, list | tuple):
        if len(objective) != 1:
            raise AutoMLError("automl.Tuner: several objectives are not supported; pass one")
        objective = objective[0]
    name = str(getattr(objective, "name", objective))
    raw = getattr(objective, "direction", None)
    direction = _DIRECTIONS.get(str(raw).lower()) if raw is not None else None
    if raw is not None and direction is None:
        raise AutoMLError(f"automl.Tuner: objective direction '{raw}' is not 'min' or 'max'")
    if not name.startswith("val_"):
        raise AutoMLError(
            f"automl.Tuner: objective '{name}' is a training metric; tune on a validation one (val_{name})"
        )
    metric = name.removeprefix("val_")
    return _ALIASES.get(metric, metric), direction


def _validation(
    x: Any, y: Any, validation_data: Any, validation_split: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from automl.data.memory import as_arrays

    x_arr, y_arr = as_arrays(x, y, "search(x, y)")
    if validation_data is not None:
        if isinstance(validation_data, tuple | list):
            if len(validation_data) not in (2, 3):
                raise DataError("search(validation_data=...): expected (x_val, y_val)")
            x_val, y_val = as_arrays(validation_data[0], validation_data[1], "validation_data")
        else:
            x_val, y_val = as_arrays(validation_data, None, "validation_data")
        return x_arr, y_arr, x_val, y_val
    if not 0.0 < validation_split < 1.0:
        raise DataError("automl.Tuner needs validation data: pass validation_data=(x, y) or validation_split=0.2")
    if y is None:
        raise DataError("search(validation_split=...): not available for datasets; pass validation_data")
    cut = int(len(x_arr) * (1.0 - validation_split))  # the last rows, as Keras's fit takes them
    if cut < 1 or cut >= len(x_arr):
        raise DataError(f"validation_split={validation_split} leaves no training or no validation rows")
    return x_arr[:cut], y_arr[:cut], x_arr[cut:], y_arr[cut:]


def _overrides(hyperparameters: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    """A ``keras_tuner.HyperParameters``' declarations as ``name -> (method, arguments)``."""
    if hyperparameters is None:
        return {}
    declared = {}
    keep = {
        "Int": ("min_value", "max_value", "step", "sampling", "default"),
        "Float": ("min_value", "max_value", "step", "sampling", "default"),
        "Choice": ("values", "ordered", "default"),
        "Boolean": ("default",),
        "Fixed": ("value",),
    }
    for hp in getattr(hyperparameters, "space", []):
        kind = type(hp).__name__
        if kind not in keep:
            raise AutoMLError(f"automl.Tuner: hyperparameters= holds a {kind} ('{hp.name}'), which is not supported")
        config = hp.get_config()
        declared[hp.name] = (kind, {k: config[k] for k in keep[kind] if k in config})
    return declared


def _kt_hyperparameters(space: list[dict[str, Any]], values: Mapping[str, Any]) -> Any:
    """KerasTuner ``HyperParameters`` holding ``values`` (automl's own when KerasTuner is not installed)."""
    try:
        import keras_tuner
    except ImportError:
        from automl.hypermodel import HyperParameters

        hp = HyperParameters(values=values)
        hp.values = dict(values)
        return hp
    hp = keras_tuner.HyperParameters()
    for spec in space:
        name = spec["name"]
        if name not in values:
            continue
        kind = spec["type"]
        if kind == "int":
            step = spec.get("step") or 1
            hp.Int(name, spec["low"], spec["high"], step=step, sampling=spec["sampling"])
        elif kind == "float":
            hp.Float(name, spec["low"], spec["high"], step=spec.get("step"), sampling=spec["sampling"])
        elif kind == "choice":
            hp.Choice(name, spec["values"], ordered=spec.get("ordered"))
        elif kind == "boolean":
            hp.Boolean(name)
        else:
            hp.Fixed(name, spec.get("value"))
    for name, value in values.items():
        hp.values[name] = value  # drawn in fit() (not declared by build) too
    return hp


class Tuner:
    """A KerasTuner-style tuner on an Optuna study, tracked in MLflow (``directory`` is automl's store home).

    ``sampler`` and ``pruner`` are automl's names (``tpe``, ``random``, ...; ``median``, ``hyperband``, ``none``).
    ``max_trials`` counts every finished trial of the project, as in KerasTuner: a second ``search`` on the same
    project (without ``overwrite``) runs only what is left.
    """

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = "val_loss",
        max_trials: int = 10,
        executions_per_trial: int = 1,
        directory: str | None = None,
        project_name: str = "untitled_project",
        overwrite: bool = False,
        hyperparameters: Any = None,
        tune_new_entries: bool = True,
        allow_new_entries: bool = True,
        sampler: str = "tpe",
        pruner: str = "median",
        seed: int | None = None,
        max_consecutive_failed_trials: int = 3,
        max_model_size: int | None = None,
        optimizer: Any = None,
        loss: Any = None,
        metrics: Any = None,
        tracking_uri: str | None = None,
        storage: str | None = None,
        **kwargs: Any,
    ) -> None:
        for key, value in kwargs.items():
            if key in UNSUPPORTED and value not in (None, 0):
                raise AutoMLError(f"automl.Tuner: {key}= is not supported ({UNSUPPORTED[key]})")
            if key not in UNSUPPORTED:
                raise AutoMLError(f"automl.Tuner: unknown argument {key}=")
        if hypermodel is None:
            raise AutoMLError("automl.Tuner: pass a hypermodel (a build(hp) function or a HyperModel)")
        if not allow_new_entries:
            raise AutoMLError("automl.Tuner: allow_new_entries=False is not supported")
        self.hypermodel = hypermodel
        if optimizer is not None or loss is not None:  # ``metrics=``: automl compiles its own (val_<objective>)
            hypermodel = _Recompiled(hypermodel, optimizer, loss)
        self.metric, self.direction = objective_name(objective)
        self.objective = objective
        self.max_trials = int(max_trials)
        self.executions_per_trial = int(executions_per_trial)
        self.directory = directory
        self.project_name = project_name
        self.overwrite = overwrite
        self.sampler, self.pruner = sampler, pruner
        self.seed = 0 if seed is None else int(seed)
        self.max_failures = int(max_consecutive_failed_trials)
        self.max_params = max_model_size
        self.store = resolve_store(directory, tracking_uri, storage)
        self.spec = f"{SPEC_PREFIX}{project_name}"
        from automl.hypermodel import register_hypermodel

        self.family, self.space = register_hypermodel(
            self.spec, hypermodel, _overrides(hyperparameters), tune_new_entries
        )
        self._session: Any = None
        self._fit: tuple[list[Any], dict[str, Any]] = ([], {})
        self.result: Any = None

    # ---- searching ------------------------------------------------------------------------------
    def _study(self) -> optuna.Study | None:
        from automl.study import load_study

        try:
            return load_study(self.project_name, self.store.storage)
        except Exception:  # no such study (or no store yet)
            return None

    def _remove_project(self) -> None:
        from automl.study import open_storage

        if self._study() is not None:
            from automl.tracking_interface import open_tracker

            optuna.delete_study(study_name=self.project_name, storage=open_storage(self.store.storage))
            open_tracker(self.store, self.project_name).delete_runs()  # the new study gets a new parent run
        shutil.rmtree(self.store.checkpoints_dir / self.project_name, ignore_errors=True)

    def search(
        self,
        x: Any = None,
        y: Any = None,
        epochs: int = 1,
        validation_data: Any = None,
        validation_split: float = 0.0,
        callbacks: Sequence[Any] | None = None,
        verbose: Any = None,
        **fit_kwargs: Any,
    ) -> None:
        """Run trials until the project has ``max_trials`` finished ones; ``fit_kwargs`` go to every ``fit``."""
        for key, why in _FIT_REFUSED.items():
            if key in fit_kwargs:
                raise AutoMLError(f"automl.Tuner.search: {key}= is not supported ({why})")
        from automl import runner
        from automl.data.memory import array_dataset
        from automl.hypermodel import fit_options
        from automl.study import count_finished

        x_tr, y_tr, x_val, y_val = _validation(x, y, validation_data, validation_split)
        dataset = array_dataset(x_tr, y_tr, x_val, y_val, name=self.project_name)
        from automl.training import resolve_metric

        _, direction = resolve_metric(dataset.task, self.metric)
        if self.direction is not None and self.direction != direction:
            raise AutoMLError(f"automl.Tuner: objective val_{self.metric} is {direction}d, not {self.direction}d")
        if self.overwrite:
            self._remove_project()
            self.overwrite = False  # a second search() continues the project, as KerasTuner's does
        existing = self._study()
        done = count_finished(existing) if existing is not None else 0
        remaining = self.max_trials - done
        config = SearchConfig(
            data=f"memory:{self.project_name}",
            study=self.project_name,
            hypermodel=self.spec,
            trials=max(1, remaining),
            epochs=int(epochs),
            seed=self.seed,
            sampler=cast(Any, self.sampler),
            pruner=cast(Any, self.pruner),
            metric=self.metric,
            max_failures=self.max_failures,
            max_params=self.max_params,
            executions_per_trial=self.executions_per_trial,
            workers=1,
            isolation="none",  # the hypermodel and the arrays live in this process
            start=False,
            report=False,  # plots on demand: ``automl report --study PROJECT``
            home=self.directory,
            tracking_uri=self.store.tracking_uri,
            storage=self.store.storage,
        )
        self._fit = (list(callbacks or []), dict(fit_kwargs))
        with fit_options(*self._fit):
            if remaining <= 0:  # the project is complete: attach to it for its results
                self._session = runner.prepare(config, join=True, dataset=dataset)
                return
            self._session = runner.prepare(config, dataset=dataset)
            self.result = runner.search_session(self._session)

    # ---- results -----------------------------------------------------------------------------
    def _best_trials(self, n: int) -> list[optuna.trial.FrozenTrial]:
        study = self._session.study if self._session is not None else self._study()
        if study is None:
            raise AutoMLError(f"automl.Tuner: project '{self.project_name}' has no trials; call search() first")
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        return sorted(done, key=lambda t: float(t.value or 0.0), reverse=maximize)[:n]

    def get_best_hyperparameters(self, num_trials: int = 1) -> list[Any]:
        """The best trials' hyperparameters as KerasTuner ``HyperParameters`` (``build(hp)`` takes them)."""
        described = self.space.describe()
        found = []
        for trial in self._best_trials(num_trials):
            values = {k: v for k, v in trial_params(trial).items() if k != "family"}
            found.append(_kt_hyperparameters(described, values))
        return found

    def get_best_models(self, num_models: int = 1) -> list[Any]:
        """The best trials' trained models: the best one from its checkpoint, others retrained with their seed."""
        from automl import runner
        from automl.hypermodel import fit_options

        if self._session is None:
            raise AutoMLError("automl.Tuner: call search() first; the models are trained on its data")
        settings = runner.trial_settings(self._session)
        models = []
        with fit_options(*self._fit):
            for trial in self._best_trials(num_models):
                model, _ = runner.best_model(trial, self.family, self._session.dataset, settings)
                models.append(model)
        return models

    def register(self, name: str | None = None) -> str:
        """Put the best model in the MLflow registry as ``name@champion`` (default: the project's name)."""
        from automl.record import read_study

        study = self._session.study if self._session is not None else self._study()
        registered = read_study(study).model if study is not None else None
        if registered is None:
            raise AutoMLError("automl.Tuner: no registered best model yet; call search() first")
        if name is None or name == registered.register_name:
            return f"models:/{registered.register_name}@champion"
        if self._session is not None:
            self._session.tracker.copy_champion(registered.register_name, name)
        else:
            from automl.tracking_interface import open_tracker

            open_tracker(self.store, self.project_name).copy_champion(registered.register_name, name)
        return f"models:/{name}@champion"

    # ---- summaries (printed, as KerasTuner does) ---------------------------------------------------
    def search_space_summary(self) -> None:
        described = self.space.describe()
        print("Search space summary")
        print(f"Default search space size: {len(described)}")
        for spec in described:
            details = {k: v for k, v in spec.items() if k not in ("name", "type") and v not in (None, [])}
            print(f"{spec['name']} ({spec['type'].capitalize()})")
            print(details)

    def results_summary(self, num_trials: int = 10) -> None:
        trials = self._best_trials(num_trials)
        print("Results summary")
        print(f"Results in {self.store.home} (study {self.project_name})")
        print(f"Showing {len(trials)} best trials")
        direction = self._session.direction if self._session is not None else self.direction
        print(f"Objective(name='val_{self.metric}', direction='{direction}')")
        for trial in trials:
            print(f"\nTrial {trial.number:02d} summary\nHyperparameters:")
            for key, value in trial_params(trial).items():
                if key != "family":
                    print(f"{key}: {value}")
            print(f"Score: {trial.value}")


__all__ = ["Tuner", "objective_name"]
