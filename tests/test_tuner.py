"""``automl.Tuner``: KerasTuner's tuner API on an Optuna study, MLflow runs and the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import mlflow
import numpy as np
import optuna
import pytest
from sklearn.datasets import load_digits
from typer.testing import CliRunner

import automl
from automl.errors import AutoMLError, DataError
from automl.record import read_study, read_trial
from cli.main import app


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    data = load_digits()
    x = (data.images / 16.0).astype("float32")  # the caller's own preprocessing, as in a KerasTuner script
    return x[:1000], data.target[:1000], x[1000:1400], data.target[1000:1400]


def build_model(hp: Any) -> keras.Model:
    """Shaped like KerasTuner's getting-started model: no Input, one-hot labels, searched depth and rate."""
    model = keras.Sequential()
    model.add(keras.layers.Flatten())
    for i in range(hp.Int("num_layers", 1, 2)):
        model.add(keras.layers.Dense(hp.Int(f"units_{i}", 32, 128, step=32), activation=hp.Choice("act", ["relu"])))
    model.add(keras.layers.Dense(10, activation="softmax"))
    lr = hp.Float("lr", 1e-3, 1e-2, sampling="log")
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def _study(home: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{home / 'optuna.db'}")


def test_the_getting_started_flow_searches_tracks_and_registers(digits: Any, home: Path) -> None:
    x, y, x_val, y_val = digits
    tuner = automl.Tuner(
        hypermodel=build_model,
        objective="val_accuracy",
        max_trials=2,
        executions_per_trial=2,
        overwrite=True,
        directory=str(home),
        project_name="hello",
    )
    tuner.search(
        x, keras.utils.to_categorical(y, 10), epochs=2, validation_data=(x_val, keras.utils.to_categorical(y_val))
    )
    study = _study(home, "hello")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2
    for trial in done:  # two fits per trial; the trial's value is their mean
        runs = read_trial(trial).execution_values
        assert len(runs) == 2 and trial.value == pytest.approx(sum(runs) / 2)

    best_hp = tuner.get_best_hyperparameters(2)
    assert isinstance(best_hp[0], kt.HyperParameters)
    assert best_hp[0].values == {k: v for k, v in read_trial(study.best_trial).params.items() if k != "family"}
    rebuilt = build_model(best_hp[0])  # KerasTuner's idiom: rebuild the best configuration
    rebuilt.build((None, 8, 8))
    assert [layer.units for layer in rebuilt.layers if isinstance(layer, keras.layers.Dense)][:-1] == [
        best_hp[0].values[f"units_{i}"] for i in range(best_hp[0].values["num_layers"])
    ]

    models = tuner.get_best_models(2)
    accuracy = float(np.mean(np.argmax(models[0].predict(x_val, verbose=0), axis=1) == y_val))
    assert accuracy > 0.8  # a trained model, not a fresh build
    assert accuracy == pytest.approx(max(read_trial(study.best_trial).execution_values), abs=0.01)
    assert len(models) == 2

    uri = tuner.register("hello-digits")
    assert uri == "models:/hello-digits@champion"
    registered = automl.predict(uri, x_val[:20], home=str(home))
    assert list(registered) == list(np.argmax(models[0].predict(x_val[:20], verbose=0), axis=1))

    # the same records as `automl search`: a parent run with one child run per trial, and the CLI reads them
    client = mlflow.MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    parent = client.get_run(read_study(study).parent_run_id)
    assert parent.info.status == "FINISHED"
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 2
    shown = CliRunner().invoke(app, ["best", "--study", "hello", "--home", str(home), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["number"] == study.best_trial.number


def test_max_trials_counts_the_whole_project_and_overwrite_starts_again(digits: Any, home: Path) -> None:
    x, y, x_val, y_val = digits
    options = {"objective": "val_loss", "directory": str(home), "project_name": "again", "max_trials": 2}
    automl.Tuner(build_model, **options).search(
        x, keras.utils.to_categorical(y, 10), epochs=1, validation_data=(x_val, keras.utils.to_categorical(y_val))
    )
    assert len(_study(home, "again").trials) == 2
    more = automl.Tuner(build_model, **{**options, "max_trials": 3})
    more.search(x, keras.utils.to_categorical(y, 10), epochs=1, validation_split=0.2)
    assert len(_study(home, "again").trials) == 3  # one more, not three more
    complete = automl.Tuner(build_model, **{**options, "max_trials": 3})
    complete.search(x, keras.utils.to_categorical(y, 10), epochs=1, validation_split=0.2)
    assert len(_study(home, "again").trials) == 3 and len(complete.get_best_hyperparameters(3)) == 3
    assert complete.register() == "models:/again@champion"  # registered by the searches before it
    old_parent = read_study(_study(home, "again")).parent_run_id
    fresh = automl.Tuner(build_model, **{**options, "max_trials": 1, "overwrite": True})
    fresh.search(x, keras.utils.to_categorical(y, 10), epochs=1, validation_split=0.2)
    assert len(_study(home, "again").trials) == 1
    client = mlflow.MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("again").experiment_id])
    new_parent = read_study(_study(home, "again")).parent_run_id
    assert new_parent != old_parent and len(runs) == 2  # a new parent run and its one trial; the old ones deleted


class CountSteps(keras.callbacks.Callback):
    """Records the steps of each epoch it sees (its copies share the list)."""

    seen: list[int] = []

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        CountSteps.seen.append(int(self.params["steps"]))


def test_fixed_and_overridden_hyperparameters_callbacks_and_fit_arguments_reach_every_trial(
    digits: Any, home: Path
) -> None:
    x, y, x_val, y_val = digits
    hp = kt.HyperParameters()
    hp.Float("lr", 5e-3, 6e-3)  # replaces build's own range
    hp.Fixed("num_layers", 1)
    CountSteps.seen = []
    tuner = automl.Tuner(
        build_model,
        objective=kt.Objective("val_loss", direction="min"),
        max_trials=2,
        directory=str(home),
        project_name="tailor",
        hyperparameters=hp,
        tune_new_entries=False,
        sampler="random",
    )
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=5)
    tuner.search(
        x,
        keras.utils.to_categorical(y, 10),
        epochs=2,
        validation_data=(x_val, keras.utils.to_categorical(y_val)),
        callbacks=[stop, CountSteps()],
        batch_size=250,
    )
    trials = _study(home, "tailor").trials
    assert len(trials) == 2
    for trial in trials:
        params = read_trial(trial).params
        assert 5e-3 <= params["lr"] <= 6e-3  # the override's range
        assert params["num_layers"] == 1 and params["units_0"] == 32  # fixed, and a new entry at its default
    assert CountSteps.seen == [4, 4, 4, 4]  # batch_size=250 on 1,000 rows, 2 epochs x 2 trials
    assert stop.model is None  # each trial got its own copy of the callback


def test_tf_data_datasets_and_integer_labels_with_a_sparse_loss(digits: Any, home: Path) -> None:
    import tensorflow as tf

    x, y, x_val, y_val = digits

    def sparse(hp: Any) -> keras.Model:
        model = keras.Sequential(
            [keras.layers.Flatten(), keras.layers.Dense(hp.Int("units", 16, 32), "relu"), keras.layers.Dense(10)]
        )
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        return model

    tuner = automl.Tuner(sparse, objective="val_accuracy", max_trials=1, directory=str(home), project_name="tfdata")
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(64)
    tuner.search(train, epochs=5, validation_data=val)
    study = _study(home, "tfdata")
    assert study.best_trial.value > 0.6  # labels stayed with their rows (chance: 0.1)
    assert read_study(study).model.test_metrics["test_accuracy"] == pytest.approx(study.best_trial.value, abs=0.01)


def test_what_the_tuner_does_not_support_is_refused_with_a_clear_error(digits: Any, home: Path) -> None:
    x, y, _, _ = digits
    with pytest.raises(AutoMLError, match="training metric"):
        automl.Tuner(build_model, objective="accuracy", directory=str(home))
    with pytest.raises(AutoMLError, match="distribution_strategy"):
        automl.Tuner(build_model, directory=str(home), distribution_strategy=object())
    with pytest.raises(AutoMLError, match="unknown argument"):
        automl.Tuner(build_model, directory=str(home), max_epochs=3)
    with pytest.raises(AutoMLError, match="several objectives"):
        automl.Tuner(build_model, objective=["val_loss", "val_accuracy"], directory=str(home))
    tuner = automl.Tuner(build_model, objective="val_accuracy", directory=str(home), project_name="refused")
    with pytest.raises(DataError, match="needs validation data"):
        tuner.search(x, y, epochs=1)
    with pytest.raises(AutoMLError, match="validation_freq"):
        tuner.search(x, y, epochs=1, validation_split=0.2, validation_freq=2)
    with pytest.raises(AutoMLError, match="maximized, not minimized"):
        automl.Tuner(
            build_model, objective=kt.Objective("val_accuracy", "min"), directory=str(home), project_name="dir"
        ).search(x, keras.utils.to_categorical(y, 10), epochs=1, validation_split=0.2)
    assert not (home / "checkpoints" / "refused").exists()  # nothing ran


def test_the_tuners_optimizer_and_loss_replace_the_hypermodels_own(digits: Any, home: Path) -> None:
    """As in KerasTuner's "tailor the search space" guide: compile arguments given to the tuner win."""
    x, y, x_val, y_val = digits

    def sparse(hp: Any) -> keras.Model:
        model = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(hp.Int("units", 16, 32), "relu")])
        model.add(keras.layers.Dense(10, activation="softmax"))
        model.compile("rmsprop", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    tuner = automl.Tuner(
        sparse,
        objective="val_accuracy",
        max_trials=1,
        directory=str(home),
        project_name="override",
        optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
        loss="categorical_crossentropy",  # integer labels: automl gives this loss one-hot ones
        metrics=["accuracy"],
    )
    tuner.search(x, y, epochs=2, validation_data=(x_val, y_val))
    trained = tuner.get_best_models(1)[0]
    assert isinstance(trained.optimizer, keras.optimizers.SGD)
    assert float(trained.optimizer.learning_rate) == pytest.approx(0.1)
    assert trained.loss == "categorical_crossentropy"
    assert _study(home, "override").best_trial.value > 0.5
