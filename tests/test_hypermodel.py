"""KerasTuner hypermodels, unmodified, under Optuna: the hp adapter, the family it makes, and a real objective."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient

from automl.data import load_dataset
from automl.errors import AutoMLError, SpaceError
from automl.hypermodel import HyperParameters, as_hypermodel, load_hypermodel, make_family
from automl.record import read_trial
from automl.training import TrainingData, train

N_FEATURES, N_CLASSES = 13, 3  # demo:wine


# ---- hypermodels in the shapes of KerasTuner's docs ------------------------------------------------------------
def build_model(hp: Any) -> keras.Model:
    """The getting-started build(hp): layers, units per layer, activation, dropout, log-scale learning rate."""
    model = keras.Sequential([keras.Input(shape=(N_FEATURES,))])
    for i in range(hp.Int("num_layers", 1, 3)):
        model.add(
            keras.layers.Dense(
                units=hp.Int(f"units_{i}", min_value=32, max_value=128, step=32),
                activation=hp.Choice("activation", ["relu", "tanh"]),
            )
        )
    if hp.Boolean("dropout"):
        model.add(keras.layers.Dropout(rate=0.25))
    model.add(keras.layers.Dense(N_CLASSES, activation="softmax"))
    learning_rate = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.5),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


class FitHyperModel(kt.HyperModel):
    """A HyperModel subclass whose fit() tunes the batch size and shuffling, as in the docs."""

    def build(self, hp: Any) -> keras.Model:
        model = keras.Sequential(
            [
                keras.Input(shape=(N_FEATURES,)),
                keras.layers.Dense(hp.Int("units", 8, 32, step=8), activation="relu"),
                keras.layers.Dense(N_CLASSES, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, hp: Any, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        return model.fit(*args, batch_size=hp.Choice("batch_size", [16, 32]), shuffle=hp.Boolean("shuffle"), **kwargs)


class EpochsHyperModel(FitHyperModel):
    """fit() sets epochs itself (``epochs=hp.Int(...)``), which collides with the epochs a tuner passes."""

    def fit(self, hp: Any, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        return model.fit(*args, epochs=hp.Int("epochs", 1, 2), **kwargs)


class ConditionalHyperModel(kt.HyperModel):
    """Model selection with conditional_scope, plus parent_name/parent_values on a single param."""

    def build(self, hp: Any) -> keras.Model:
        inputs = keras.Input(shape=(N_FEATURES,))
        model_type = hp.Choice("model_type", ["wide", "deep"])
        x = inputs
        with hp.conditional_scope("model_type", ["wide"]):
            if model_type == "wide":
                x = keras.layers.Dense(hp.Int("wide_units", 64, 128, step=64), activation="relu")(x)
        with hp.conditional_scope("model_type", ["deep"]):
            if model_type == "deep":
                for i in range(hp.Int("deep_layers", 2, 3)):
                    x = keras.layers.Dense(16, activation="relu", name=f"deep_{i}")(x)
        rate = hp.Float("dropout", 0.1, 0.5, step=0.1, parent_name="model_type", parent_values=["deep"])
        if rate is not None:
            x = keras.layers.Dropout(rate)(x)
        outputs = keras.layers.Dense(N_CLASSES, activation="softmax")(x)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


@pytest.fixture(scope="module")
def wine() -> Any:
    return load_dataset("demo:wine", seed=0)


def _study(seed: int = 0) -> optuna.Study:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed), direction="maximize")


def _dense_units(model: keras.Model) -> list[int]:
    return [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)]


# ---- the hp adapter ----------------------------------------------------------------------------------------------
def test_build_function_params_come_from_the_trial_and_replay_exactly(wine: Any) -> None:
    family, space = load_hypermodel_from(build_model)
    study = _study()
    seen_layers = set()
    for _ in range(8):
        trial = study.ask()
        params = space.suggest(trial, "classification")
        layers = params["num_layers"]
        seen_layers.add(layers)
        assert set(params) == {"num_layers", *(f"units_{i}" for i in range(layers)), "activation", "dropout", "lr"}
        assert params == trial.params  # every value was drawn by Optuna, define-by-run
        assert all(params[f"units_{i}"] in (32, 64, 96, 128) for i in range(layers))
        assert 1e-4 <= params["lr"] <= 1e-2 and isinstance(params["dropout"], bool)
        model = family.build(params, wine.spec)  # plain values, no trial: what reproduce and promote use
        assert _dense_units(model) == [params[f"units_{i}"] for i in range(layers)] + [N_CLASSES]
        assert float(model.optimizer.learning_rate) == pytest.approx(params["lr"], rel=1e-6)
        study.tell(trial, 0.5)
    assert len(seen_layers) > 1
    dists = study.trials[0].distributions
    assert isinstance(dists["lr"], optuna.distributions.FloatDistribution) and dists["lr"].log
    assert dists["units_0"].step == 32


def test_conditional_scope_and_parent_values_leave_inactive_params_out() -> None:
    _, space = load_hypermodel_from(ConditionalHyperModel)
    study = _study(seed=3)
    types = set()
    for _ in range(10):
        trial = study.ask()
        params = space.suggest(trial, "classification")
        types.add(params["model_type"])
        if params["model_type"] == "wide":
            assert set(params) == {"model_type", "wide_units"} and params["wide_units"] in (64, 128)
        else:
            assert set(params) == {"model_type", "deep_layers", "dropout"}
            assert any(params["dropout"] == pytest.approx(v) for v in (0.1, 0.2, 0.3, 0.4, 0.5))
        assert set(trial.params) == set(params)
        study.tell(trial, 0.0)
    assert types == {"wide", "deep"}


def test_kerastuner_semantics_for_inactive_fixed_get_and_scopes() -> None:
    hp = HyperParameters(values={"kind": "a"})
    assert hp.Choice("kind", ["a", "b"]) == "a"
    with hp.conditional_scope("kind", ["b"]):
        assert hp.Int("only_b", 1, 4) is None  # KerasTuner returns None for an inactive param
    assert "only_b" not in hp and "only_b" not in hp.values
    with pytest.raises(ValueError, match="inactive"):
        hp.get("only_b")
    with pytest.raises(KeyError):
        hp.get("never")
    assert hp.Fixed("width", 7) == 7 and hp["width"] == 7
    with hp.name_scope("block"):
        assert hp.Int("depth", 2, 5, default=3) == 3  # no trial, no record: KerasTuner's default
    assert hp.values["block/depth"] == 3
    with pytest.raises(ValueError, match="not defined"), hp.conditional_scope("missing", [1]):
        pass
    assert hp.copy().values == hp.values


def test_sampling_modes_and_their_ranges() -> None:
    study = _study(seed=5)
    drawn: dict[str, list[Any]] = {"log_step": [], "reverse": [], "float_step": [], "int_log": []}
    for _ in range(30):
        trial = study.ask()
        hp = HyperParameters(trial=trial)
        drawn["log_step"].append(hp.Int("filters", 8, 128, step=2, sampling="log"))
        drawn["reverse"].append(hp.Float("momentum", 0.5, 0.99, sampling="reverse_log"))
        drawn["float_step"].append(hp.Float("rate", 0.0, 0.5, step=0.25))
        drawn["int_log"].append(hp.Int("units", 4, 256, sampling="LOG"))
        study.tell(trial, 0.0)
    assert set(drawn["log_step"]) <= {8, 16, 32, 64, 128} and len(set(drawn["log_step"])) > 2
    assert all(0.5 <= v <= 0.99 for v in drawn["reverse"])
    assert np.median(drawn["reverse"]) > 0.745  # reverse_log is dense near max_value
    assert set(drawn["float_step"]) <= {0.0, 0.25, 0.5}
    assert all(4 <= v <= 256 for v in drawn["int_log"])
    with pytest.raises(ValueError, match="sampling"):
        HyperParameters().Int("x", 1, 2, sampling="cubic")
    with pytest.raises(ValueError, match="min_value"):
        HyperParameters().Float("x", 2.0, 1.0)


def test_pinned_values_are_parsed_by_type_and_unknown_pins_refused() -> None:
    _, space = load_hypermodel_from(build_model)
    fixed = space.parse_fixed(["num_layers=2", "units_0=64", "activation=TANH", "dropout=true"])
    params = space.suggest(_study().ask(), "classification", fixed)
    assert params["num_layers"] == 2 and params["units_0"] == 64
    assert params["activation"] == "tanh" and params["dropout"] is True
    with pytest.raises(SpaceError, match="unitz"):
        space.suggest(_study().ask(), "classification", {"unitz": "3"})
    with pytest.raises(SpaceError, match="activation"):
        space.suggest(_study().ask(), "classification", {"activation": "swish"})


# ---- training through automl ------------------------------------------------------------------------------------
def test_training_keeps_the_build_functions_optimizer_and_loss(wine: Any) -> None:
    family, space = load_hypermodel_from(build_model)
    params = space.suggest(_study(seed=1).ask(), "classification", {"lr": "0.005"})
    keras.utils.set_random_seed(1)
    model, log = train(family, params, wine, TrainingData.from_dataset(wine), 2, "val_accuracy", "maximize")
    assert isinstance(model.optimizer, keras.optimizers.SGD)  # not automl's default Adam
    assert float(model.optimizer.learning_rate) == pytest.approx(0.005)
    assert len(log.history) == 2 and {"loss", "val_loss", "val_accuracy"} <= set(log.history[0])
    keras.utils.set_random_seed(1)
    _, again = train(family, params, wine, TrainingData.from_dataset(wine), 2, "val_accuracy", "maximize")
    assert again.history == log.history  # replayed params + the same seed: the same fit


def test_fit_override_runs_and_its_params_join_the_record(wine: Any) -> None:
    family, space = load_hypermodel_from(FitHyperModel)
    assert family.fit is not None and family.name.startswith("hypermodel:")
    trial = _study(seed=2).ask()
    params = space.suggest(trial, "classification")
    assert set(params) == {"units"}  # build only; fit has not run yet
    _, log = train(family, params, wine, TrainingData.from_dataset(wine), 2, "val_accuracy", "maximize")
    assert len(log.history) == 2
    assert params["batch_size"] in (16, 32) and isinstance(params["shuffle"], bool)
    assert {"units", "batch_size", "shuffle"} == set(trial.params)

    study = _study(seed=9)
    other = study.ask()
    space.suggest(other, "classification")
    study.tell(other, 0.0)  # the live trial has ended: a replay must not draw from it
    replay = {"units": other.params["units"], "batch_size": 16}  # a record that lacks the fit-time "shuffle"
    train(family, replay, wine, TrainingData.from_dataset(wine), 1, "val_accuracy", "maximize")
    assert replay["shuffle"] is False  # KerasTuner's default

    epochs_family, epochs_space = load_hypermodel_from(EpochsHyperModel)
    pinned = epochs_space.suggest(_study().ask(), "classification")
    pinned["epochs"] = 1  # the user's fit picks the epochs; ours (2) give way
    _, short = train(epochs_family, pinned, wine, TrainingData.from_dataset(wine), 2, "val_accuracy", "maximize")
    assert len(short.history) == 1


def test_objective_runs_a_hypermodel_study_end_to_end(wine: Any, home: Path) -> None:
    """The real Objective + Tracker + Optuna TPE/median pruner, with the hypermodel as family and space."""
    from automl.config import resolve_store
    from automl.objective import Objective, TrialSettings
    from automl.tracking import Tracker

    family, space = load_hypermodel_from(ConditionalHyperModel)
    store = resolve_store(home)
    tracker = Tracker(store, "hm")
    parent = tracker.attach_parent(None, {})
    settings = TrialSettings(2, 0, "accuracy", "maximize", {}, store.checkpoints_dir / "hm")
    objective = Objective(family, space, wine, settings, tracker, parent)  # type: ignore[arg-type]
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=2),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2),
    )
    study.optimize(objective, n_trials=4)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) >= 2
    for trial in complete:
        assert read_trial(trial).params["family"] == family.name
        assert 0.0 <= trial.value <= 1.0 and len(read_trial(trial).history) == 2
    best = study.best_trial
    assert Path(read_trial(best).checkpoint).is_file()


# ---- loading a hypermodel from MODULE:NAME -------------------------------------------------------------------------
HYPERMODEL_FILE = textwrap.dedent(
    '''
    import keras
    import keras_tuner as kt

    def build(hp):
        """A two-layer net."""
        model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(hp.Int("units", 4, 8)),
                                  keras.layers.Dense(2, activation="softmax")])
        return model

    class Tuned(kt.HyperModel):
        def build(self, hp):
            return build(hp)

    class NeedsArgs(kt.HyperModel):
        def __init__(self, width):
            super().__init__()

        def build(self, hp):
            return build(hp)

    instance = Tuned()
    NOT_A_MODEL = 3
    '''
)


def test_load_hypermodel_by_module_and_by_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_hypermodels.py").write_text(HYPERMODEL_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    family, space = load_hypermodel("my_hypermodels:build")
    assert family.name == "hypermodel:my_hypermodels:build" and family.description == "A two-layer net."
    assert 'hp.Int("units", 4, 8)' in space.text and len(space.sha256) == 64
    assert family.fit is not None and "image" in family.data_kinds  # it declares its own inputs
    for name in ("Tuned", "instance"):
        _, other = load_hypermodel(f"my_hypermodels:{name}")
        assert set(other.suggest(_study().ask(), "classification")) == {"units"}
    by_file, _ = load_hypermodel(f"{tmp_path / 'my_hypermodels.py'}:build")
    assert by_file.build({"units": 5}, None).layers[0].units == 5
    for spec, message in [
        ("my_hypermodels:missing", "no attribute 'missing'"),
        ("my_hypermodels:NeedsArgs", "needs arguments"),
        ("my_hypermodels:NOT_A_MODEL", "neither"),
        ("no_such_module_xyz:build", "cannot import"),
        ("nocolon", "MODULE:NAME"),
        (f"{tmp_path / 'absent.py'}:build", "not found"),
    ]:
        with pytest.raises(AutoMLError, match=message):
            load_hypermodel(spec)


def test_a_hypermodel_instance_without_fit_override_uses_automls_fit() -> None:
    class Plain(kt.HyperModel):
        def build(self, hp: Any) -> keras.Model:
            return build_model(hp)

    assert make_family("hypermodel:x:Plain", as_hypermodel(Plain, "x:Plain")).fit is not None
    from automl.hypermodel import overrides_fit

    assert not overrides_fit(Plain()) and overrides_fit(FitHyperModel())
    assert not overrides_fit(as_hypermodel(build_model, "x:build_model"))


def load_hypermodel_from(target: Any) -> tuple[Any, Any]:
    """``load_hypermodel`` for an object defined in this file (no import by name)."""
    from automl.hypermodel import HyperModelSpace, _source_text

    hypermodel = as_hypermodel(target, "tests:target")
    name = f"hypermodel:tests:{getattr(target, '__name__', 'target')}"
    space = HyperModelSpace(source=name, text=_source_text(name, target), hypermodel=hypermodel, family=name)
    return make_family(name, hypermodel), space


def test_cli_search_with_a_hypermodel_registers_its_champion(tmp_path: Path, home: Path) -> None:
    from mlflow.tracking import MlflowClient
    from typer.testing import CliRunner

    from cli.main import app

    module = tmp_path / "kt_models.py"
    module.write_text(
        textwrap.dedent(
            """
        import keras

        def build(hp):
            model = keras.Sequential([keras.Input(shape=(13,)), keras.layers.Dense(hp.Int("units", 8, 32)),
                                      keras.layers.Dense(3, activation="softmax")])
            model.compile(optimizer=hp.Choice("optimizer", ["adam", "sgd"]), loss="sparse_categorical_crossentropy")
            return model
        """
        )
    )
    result = CliRunner().invoke(
        app,
        [
            "search",
            "--hypermodel",
            f"{module}:build",
            "--data",
            "demo:wine",
            "--trials",
            "2",
            "--epochs",
            "1",
            "--study",
            "kt",
            "--home",
            str(home),
            "--json",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("kt").experiment_id])
    children = [r for r in runs if r.data.tags.get("automl.role") == "trial"]
    assert len(children) == 2
    assert all(r.data.params["family"] == f"hypermodel:{module}:build" and "units" in r.data.params for r in children)
    assert str(client.get_model_version_by_alias("kt", "champion").version) == "1"


def test_a_hypermodel_that_tunes_in_fit_trains_in_process_under_the_default_isolation(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What fit() draws reaches the trial's params even though trials default to a child process."""
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("AUTOML_ISOLATION", "process")
    module = tmp_path / "kt_fit.py"
    module.write_text(
        textwrap.dedent(
            """
            import keras

            class FitModel:
                def build(self, hp):
                    model = keras.Sequential([keras.Input(shape=(13,)), keras.layers.Dense(hp.Int("units", 8, 32)),
                                              keras.layers.Dense(3, activation="softmax")])
                    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
                    return model

                def fit(self, hp, model, *args, **kwargs):
                    return model.fit(*args, batch_size=hp.Choice("batch_size", [16, 32]), **kwargs)

            model = FitModel()
            """
        )
    )
    result = CliRunner().invoke(
        app,
        ["search", "--hypermodel", f"{module}:model", "--data", "demo:wine", "--trials", "2", "--epochs", "1",
         "--study", "ktfit", "--home", str(home), "--quiet", "--no-report"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    trials = optuna.load_study(study_name="ktfit", storage=f"sqlite:///{home / 'optuna.db'}").get_trials()
    assert len(trials) == 2
    assert all(t.params["batch_size"] in (16, 32) and read_trial(t).child_pid is None for t in trials)


def search_hypermodel(tmp_path: Path, home: Path, study: str, source: str, target: str, *options: str) -> Any:
    """Write ``source`` as a module and run ``automl search --hypermodel MODULE:target`` on it, in process."""
    from typer.testing import CliRunner

    from cli.main import app

    module = tmp_path / f"{study}.py"
    module.write_text(textwrap.dedent(source))
    where = ["--hypermodel", f"{module}:{target}", "--study", study, "--home", str(home)]
    data = [] if "--data" in options else ["--data", "demo:wine"]
    return CliRunner().invoke(app, ["search", *where, *data, *options])


def study_trials(home: Path, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=f"sqlite:///{home / 'optuna.db'}").get_trials()


def dense_build(head: str, loss: str, optimizer: str = "keras.optimizers.Adam(1e-2)") -> str:
    """A build(hp) for wine's 13 columns: one searched hidden layer, then ``head``."""
    return f"""
        import keras

        def build(hp):
            model = keras.Sequential([keras.Input(shape=(13,)), keras.layers.Dense(hp.Int("units", 16, 32), "relu"),
                                      {head}])
            model.compile(optimizer={optimizer}, loss={loss})
            return model
        """


SOFTMAX_3 = 'keras.layers.Dense(3, activation="softmax")'
SPARSE = '"sparse_categorical_crossentropy"'


def test_a_sequential_without_input_as_in_kerastuners_getting_started_searches(tmp_path: Path, home: Path) -> None:
    """The model is built on its first call; the lint builds it on the data's shape."""
    source = """
        import keras

        def build_model(hp):
            model = keras.Sequential()
            model.add(keras.layers.Flatten())
            model.add(keras.layers.Dense(units=hp.Int("units", min_value=32, max_value=64, step=32), activation="relu"))
            model.add(keras.layers.Dense(10, activation="softmax"))
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            return model
        """
    options = ("--data", "demo:digits-images", "--trials", "1", "--epochs", "1", "--json")
    result = search_hypermodel(tmp_path, home, "gs", source, "build_model", *options)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["champion_uri"] == "models:/gs@champion" and summary["test_metrics"]["test_accuracy"] > 0.5


def test_a_build_that_refuses_a_combination_with_failed_trial_error_passes_the_lint(tmp_path: Path, home: Path) -> None:
    source = """
        import keras
        from keras_tuner.errors import FailedTrialError

        def build(hp):
            units = hp.Int("units", 8, 64)
            if units >= 60:
                raise FailedTrialError("too wide for this demo")
            model = keras.Sequential([keras.Input(shape=(13,)), keras.layers.Dense(units),
                                      keras.layers.Dense(3, activation="softmax")])
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            return model
        """
    result = search_hypermodel(tmp_path, home, "refuse", source, "build", "--trials", "2", "--epochs", "1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["champion_uri"] == "models:/refuse@champion"


def test_set_pins_a_hypermodels_own_param_in_every_trial(tmp_path: Path, home: Path) -> None:
    source = dense_build(SOFTMAX_3, SPARSE, 'keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log"))')
    options = ("--trials", "2", "--epochs", "1", "--quiet", "--no-report")
    result = search_hypermodel(
        tmp_path, home, "pin", source, "build", *options, "--set", "units=24", "--set", "lr=1e-3"
    )
    assert result.exit_code == 0, result.output
    trials = study_trials(home, "pin")
    assert [read_trial(t).params["units"] for t in trials] == [24, 24]
    assert [read_trial(t).params["lr"] for t in trials] == [1e-3, 1e-3]  # parsed as a number, not "1e-3"
    bad = search_hypermodel(tmp_path, home, "bad", source, "build", "--set", "unitz=3")
    assert bad.exit_code == 2 and "unitz" in bad.stderr


def test_a_hypermodel_compiled_with_categorical_crossentropy_gets_one_hot_labels(tmp_path: Path, home: Path) -> None:
    source = dense_build(SOFTMAX_3, '"categorical_crossentropy"')
    result = search_hypermodel(tmp_path, home, "oh", source, "build", "--trials", "2", "--epochs", "3", "--json")
    assert result.exit_code == 0, result.output
    trials = study_trials(home, "oh")
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert max(t.value for t in trials) > 0.8  # accuracy on one-hot labels, not a sparse metric on the wrong shape
    assert json.loads(result.stdout)["test_metrics"]["test_accuracy"] > 0.8


def test_a_hypermodels_own_optimizer_and_learning_rate_hps_are_not_automls(tmp_path: Path, home: Path) -> None:
    source = """
        import keras

        def build(hp):
            model = keras.Sequential([keras.Input(shape=(13,)), keras.layers.Dense(16, "relu"),
                                      keras.layers.Dense(3, activation="softmax")])
            name = hp.Choice("optimizer", ["SGD", "Adam"])
            rate = hp.Float("learning_rate", 1e-3, 1e-2, sampling="log")
            optimizer = keras.optimizers.SGD(rate) if name == "SGD" else keras.optimizers.Adam(rate)
            model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
            return model
        """
    result = search_hypermodel(
        tmp_path, home, "own", source, "build", "--trials", "3", "--epochs", "1", "--set", "optimizer=SGD"
    )
    assert result.exit_code == 0, result.output
    trials = study_trials(home, "own")
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert {read_trial(t).params["optimizer"] for t in trials} == {"SGD"}


def test_logit_outputs_get_their_test_log_loss_from_a_softmax(tmp_path: Path, home: Path) -> None:
    import automl
    from automl.data import adapt_input, predict_inputs

    source = dense_build("keras.layers.Dense(3)", "keras.losses.SparseCategoricalCrossentropy(from_logits=True)")
    result = search_hypermodel(tmp_path, home, "lg", source, "build", "--trials", "1", "--epochs", "3", "--json")
    assert result.exit_code == 0, result.output
    reported = json.loads(result.stdout)["test_metrics"]["test_log_loss"]
    dataset = load_dataset("demo:wine", seed=0)
    model = automl.load_model("models:/lg@champion", home=str(home))
    logits = predict_inputs(model, adapt_input(dataset.metadata, dataset.raw_test)).astype("float64")
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    truth = probs[np.arange(len(dataset.y_test)), dataset.y_test]
    assert abs(reported - float(-np.mean(np.log(np.clip(truth, 1e-7, 1))))) < 1e-3


def test_an_output_wider_than_the_classes_is_refused_before_any_trial(tmp_path: Path, home: Path) -> None:
    source = dense_build('keras.layers.Dense(10, activation="softmax")', SPARSE)
    result = search_hypermodel(tmp_path, home, "wide", source, "build")
    assert result.exit_code == 2
    assert "outputs 10 value(s) per row but the data has 3 classes" in result.stderr
    assert not (home / "optuna.db").exists()


def test_a_lambda_layer_is_refused_by_the_lint_before_any_trial(tmp_path: Path, home: Path) -> None:
    source = dense_build(f"keras.layers.Lambda(lambda t: t * 1.0), {SOFTMAX_3}", SPARSE)
    result = search_hypermodel(tmp_path, home, "lam", source, "build")
    assert result.exit_code == 2 and "is a Lambda" in result.stderr and "safe_mode" in result.stderr
    assert "--trust-model-code" in result.stderr
    assert not (home / "optuna.db").exists()


def test_trust_model_code_searches_registers_and_loads_a_lambda_model(tmp_path: Path, home: Path) -> None:
    """The flag passes the lint; the registry records it, so the champion loads without safe_mode, that model only."""
    import automl
    from automl.data import adapt_input, predict_inputs

    source = dense_build(f"keras.layers.Lambda(lambda t: t * 2.0), {SOFTMAX_3}", SPARSE)
    options = ("--trials", "2", "--epochs", "1", "--quiet", "--no-report", "--trust-model-code")
    result = search_hypermodel(tmp_path, home, "trusted", source, "build", *options)
    assert result.exit_code == 0, result.output
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.get_model_version_by_alias("trusted", "champion").tags["automl.trust_model_code"] == "true"
    model = automl.load_model("models:/trusted@champion", home=str(home))
    assert any(isinstance(layer, keras.layers.Lambda) for layer in model._flatten_layers())
    dataset = load_dataset("demo:wine", seed=0)
    assert predict_inputs(model, adapt_input(dataset.metadata, dataset.raw_test)).shape == (len(dataset.y_test), 3)

    plain = search_hypermodel(tmp_path, home, "plain", dense_build(SOFTMAX_3, SPARSE), "build", *options[:-1])
    assert plain.exit_code == 0, plain.output
    assert "automl.trust_model_code" not in client.get_model_version_by_alias("plain", "champion").tags


def test_a_custom_training_loop_that_sets_callback_model_by_hand_trains(tmp_path: Path, home: Path) -> None:
    """KerasTuner's custom-training-loop guide drives the callbacks itself: ``callback.model = model``."""
    source = """
        import keras
        import keras_tuner
        import numpy as np

        class LoopModel(keras_tuner.HyperModel):
            def build(self, hp):
                model = keras.Sequential([keras.Input(shape=(13,)), keras.layers.Dense(hp.Int("units", 16, 32), "relu"),
                                          keras.layers.Dense(3, activation="softmax")])
                model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
                return model

            def fit(self, hp, model, x, y, validation_data, callbacks=None, **kwargs):
                for callback in callbacks:
                    callback.model = model
                x_val, y_val = validation_data
                for epoch in range(kwargs.get("epochs", 2)):
                    model.fit(x, y, epochs=1, verbose=0)
                    accuracy = float(np.mean(np.argmax(model.predict(x_val, verbose=0), -1) == y_val))
                    for callback in callbacks:
                        callback.on_epoch_end(epoch, logs={"loss": 0.0, "val_accuracy": accuracy})
                return accuracy

        hypermodel = LoopModel()
        """
    options = ("--trials", "1", "--epochs", "2", "--quiet", "--no-report")
    result = search_hypermodel(tmp_path, home, "loop", source, "hypermodel", *options)
    assert result.exit_code == 0, result.output
    trial = study_trials(home, "loop")[0]
    assert trial.state.name == "COMPLETE" and trial.value > 0.5 and len(read_trial(trial).history) == 2


def test_a_regression_hypermodel_ending_in_relu_predicts_in_the_targets_own_units(tmp_path: Path, home: Path) -> None:
    import automl
    from automl.data import adapt_input, predict_inputs

    source = """
        import keras

        def build(hp):
            model = keras.Sequential([keras.Input(shape=(10,)), keras.layers.Dense(hp.Int("units", 32, 64), "relu"),
                                      keras.layers.Dense(1, activation="relu")])
            model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
            return model
        """
    options = ("--data", "demo:diabetes", "--trials", "1", "--epochs", "30", "--json", "--no-report")
    result = search_hypermodel(tmp_path, home, "relu", source, "build", *options)
    assert result.exit_code == 0, result.output
    dataset = load_dataset("demo:diabetes", seed=0)
    model = automl.load_model("models:/relu@champion", home=str(home))
    predicted = predict_inputs(model, adapt_input(dataset.metadata, dataset.raw_test)).reshape(-1)
    assert predicted.min() < float(np.mean(dataset.y_train)) - 20  # standardized targets floored it at the mean
    assert json.loads(result.stdout)["test_metrics"]["test_rmse"] < float(np.std(dataset.y_test))


def test_fit_reads_builds_values_through_get_index_and_values(tmp_path: Path, home: Path) -> None:
    source = """
        import keras
        import keras_tuner

        class Reads(keras_tuner.HyperModel):
            def build(self, hp):
                model = keras.Sequential([keras.Input(shape=(13,)), keras.layers.Dense(hp.Int("units", 16, 32), "relu"),
                                          keras.layers.Dense(3, activation="softmax")])
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
                return model

            def fit(self, hp, model, *args, **kwargs):
                assert hp.get("units") == hp["units"] == hp.values["units"]
                return model.fit(*args, batch_size=hp.Choice("batch_size", [16, 32]), **kwargs)

        hypermodel = Reads()
        """
    options = ("--trials", "2", "--epochs", "1", "--quiet", "--no-report")
    result = search_hypermodel(tmp_path, home, "reads", source, "hypermodel", *options)
    assert result.exit_code == 0, result.output
    trials = study_trials(home, "reads")
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert all(read_trial(t).params["batch_size"] in (16, 32) and "units" in read_trial(t).params for t in trials)


# ---- what HyperModel.fit returns, and what it does to x ----------------------------------------------------------
RETURNING_FIT = """
    import keras
    import keras_tuner

    class Returns(keras_tuner.HyperModel):
        def build(self, hp):
            model = keras.Sequential([keras.Input(shape=(13,)), keras.layers.Dense(hp.Int("units", 16, 32), "relu"),
                                      keras.layers.Dense(3, activation="softmax")])
            model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
            return model

        def fit(self, hp, model, x, y, validation_data, callbacks, **kwargs):
            # trains without automl's callbacks, as custom evaluations do: what it returns is all there is
            history = model.fit(x, y, validation_data=validation_data, **kwargs)
            return RETURNED
    """


@pytest.mark.parametrize(
    "returned", ["0.25", '{"accuracy": 0.125, "other": 7.0}', "history", '{"other": 7.0}'], ids=str
)
def test_the_value_fit_returns_becomes_the_trials_value(tmp_path: Path, home: Path, returned: str) -> None:
    """KerasTuner takes a number, a {metric: value} dict (the objective's entry) or a History from fit()."""
    source = RETURNING_FIT.replace("RETURNED", returned)
    options = ("--trials", "1", "--epochs", "2", "--quiet", "--no-report")
    result = search_hypermodel(tmp_path, home, "ret", source, "Returns", *options)
    trial = study_trials(home, "ret")[0]
    if returned == '{"other": 7.0}':  # no entry for the objective
        assert result.exit_code == 1 and trial.state.name == "FAIL"
        error = read_trial(trial).error
        assert "fit() returned {other}: none is the objective 'val_accuracy' (or 'accuracy')" in error
        return
    assert result.exit_code == 0, result.output
    assert trial.state.name == "COMPLETE"
    history = read_trial(trial).history
    if returned == "history":  # its epochs are replayed: the best validation accuracy is the value
        assert len(history) == 2 and trial.value == max(row["val_accuracy"] for row in history)
    elif returned == "0.25":
        assert trial.value == 0.25 and history == [{"val_accuracy": 0.25}]
    else:
        assert trial.value == 0.125 and history[-1] == {"accuracy": 0.125, "other": 7.0, "val_accuracy": 0.125}


PREPROCESSING_FIT = """
    import keras
    import keras_tuner

    class Preprocesses(keras_tuner.HyperModel):
        def build(self, hp):
            model = keras.Sequential([keras.Input(shape=(13,)), keras.layers.Dense(hp.Int("units", 16, 32), "relu"),
                                      keras.layers.Dense(3, activation="softmax")], name="core")
            model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
            return model

        def fit(self, hp, model, x, y, validation_data, **kwargs):
            x_val, y_val = validation_data
            PREPROCESS
            return model.fit(x, y, validation_data=(x_val, y_val), **kwargs)
    """


def test_preprocessing_layers_that_fit_applies_to_x_ship_in_front_of_the_registered_model(
    tmp_path: Path, home: Path
) -> None:
    """As getting-started's ``normalize`` fit does: the registered model takes raw rows and predicts as trained."""
    import automl
    from automl.data import adapt_input, predict_inputs

    steps = """
            norm = keras.layers.Normalization()
            norm.adapt(x)
            x, x_val = norm(x), norm(x_val)
            scale = keras.layers.Rescaling(10.0, offset=3.0)
            x, x_val = scale(x), scale(x_val)"""
    source = PREPROCESSING_FIT.replace("\n            PREPROCESS", textwrap.indent(textwrap.dedent(steps), " " * 12))
    options = ("--trials", "1", "--epochs", "3", "--json", "--no-report")
    result = search_hypermodel(tmp_path, home, "prep", source, "Preprocesses", *options)
    assert result.exit_code == 0, result.output
    dataset = load_dataset("demo:wine", seed=0)
    model = automl.load_model("models:/prep@champion", home=str(home))
    served = predict_inputs(model, adapt_input(dataset.metadata, dataset.raw_test))
    wrapper = next(layer for layer in model.layers if layer.name == "core_with_fit_preprocessing")
    norm, scale, core = wrapper.layers[1:]
    assert isinstance(norm, keras.layers.Normalization) and isinstance(scale, keras.layers.Rescaling)
    as_trained = core.predict(np.asarray(scale(norm(dataset.x_test))), verbose=0)  # what fit() fed the network
    np.testing.assert_allclose(served, as_trained, rtol=1e-5, atol=1e-6)
    assert json.loads(result.stdout)["test_metrics"]["test_accuracy"] > 0.8


def test_fit_that_changes_x_without_a_keras_layer_fails_its_trial_naming_it(tmp_path: Path, home: Path) -> None:
    source = PREPROCESSING_FIT.replace("PREPROCESS", "x, x_val = x * 10.0, x_val * 10.0")
    result = search_hypermodel(tmp_path, home, "numpy", source, "Preprocesses", "--trials", "1", "--epochs", "1")
    assert result.exit_code == 1
    error = read_trial(study_trials(home, "numpy")[0]).error
    assert "HyperModel.fit trains on inputs it changed without a Keras layer" in error
