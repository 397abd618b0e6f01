"""The typed study record, the no-op tracker (``--no-tracking``) and a ``SearchConfig`` that checks itself."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import optuna
import pytest
from typer.testing import CliRunner

from automl.config import SearchConfig
from automl.errors import AutoMLError
from automl.record import (
    RECORD_KEY,
    RegisteredModel,
    StudyRecord,
    read_study,
    read_trial,
    stored_attrs,
    update_study,
    write_study,
    write_trial,
)
from cli.main import app


def test_the_record_round_trips_under_one_versioned_key() -> None:
    study = optuna.create_study(direction="maximize")
    record = StudyRecord(family="mlp", task="classification", metric="accuracy", budget=4, config={"seed": 3})
    record.model = RegisteredModel("models:/m/1", 2, "m", {"test_accuracy": 0.9})
    write_study(study, record)
    assert set(stored_attrs(study)) == {RECORD_KEY}
    back = read_study(study)
    assert back == StudyRecord(**{**record.__dict__, "direction": "maximize"})
    assert back.seed == 3 and back.monitor == "val_accuracy"
    update_study(study, budget=6)
    assert read_study(study).budget == 6 and read_study(study).model == record.model


def test_trial_attrs_are_typed_and_unknown_names_refused() -> None:
    study = optuna.create_study()
    trial = study.ask()
    write_trial(trial, seed=7, history=[{"val_loss": 1.0}])
    with pytest.raises(KeyError, match="not a trial attribute: colour"):
        write_trial(trial, colour="red")
    study.tell(trial, 1.0)
    attrs = read_trial(study.trials[0])
    assert attrs.seed == 7 and attrs.history == [{"val_loss": 1.0}] and attrs.params is None


def test_search_config_refuses_what_cannot_run_and_reads_defaults_in_one_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for bad, message in (
        ({"trials": 0}, "--trials must be at least 1"),
        ({"epochs": 0}, "--epochs must be at least 1"),
        ({"sampler": "grid"}, "--sampler 'grid' is not one of tpe"),
        ({"task": "clustering"}, "--task 'clustering'"),
        ({"isolation": "thread"}, "--isolation 'thread'"),
        ({"workers": 0}, "--workers must be at least 1"),
        ({"val_fraction": 1.5}, "val_fraction"),
    ):
        with pytest.raises(AutoMLError, match=message):
            SearchConfig(data="demo:wine", **bad)  # type: ignore[arg-type]
    monkeypatch.setenv("AUTOML_ISOLATION", "none")
    config = SearchConfig.from_options(
        {"data": "demo:wine", "isolation": None, "trials": None, "set_values": ["units=8"], "quiet": True}
    )
    assert config.isolation == "none" and config.trials == 20 and config.fixed == {"units": "8"}
    with pytest.raises(AutoMLError, match="--set 'units'"):
        SearchConfig.from_options({"data": "demo:wine", "set_values": ["units"]})


def test_bad_settings_are_one_line_exit_2_from_the_cli(home: Path) -> None:
    for option in (["--isolation", "thread"], ["--task", "clustering"], ["--epochs", "0"]):
        result = CliRunner().invoke(app, ["search", "--data", "demo:wine", "--home", str(home), *option])
        assert result.exit_code == 2, result.output
        assert option[0] in result.output and "Traceback" not in result.output
    assert not (home / "optuna.db").exists()  # refused before any store was made


def test_no_tracking_keeps_the_study_and_saves_the_best_model_without_mlflow(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOML_ISOLATION", "none")
    runner = CliRunner()
    args = ["--data", "demo:wine", "--trials", "2", "--epochs", "1", "--study", "quick", "--home", str(home)]
    result = runner.invoke(app, ["search", *args, "--no-tracking", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert not (home / "mlflow.db").exists() and not (home / "artifacts").exists()
    saved = home / "models" / "quick.keras"
    assert shown["model_uri"] == str(saved) and shown["champion_uri"] is None
    model = keras.saving.load_model(saved)
    assert model.output_shape == (None, 3)  # wine's three classes, preprocessing inside
    study = optuna.load_study(study_name="quick", storage=f"sqlite:///{home / 'optuna.db'}")
    record = read_study(study)
    assert record.config["tracking"] is False and record.model is not None and record.model.uri == str(saved)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert all(read_trial(t).history for t in study.trials)
    best = runner.invoke(app, ["best", "--study", "quick", "--home", str(home), "--json"])
    assert best.exit_code == 0, best.output
    assert json.loads(best.stdout)["model_uri"] == str(saved)
    resumed = runner.invoke(app, ["resume", "--study", "quick", "--trials", "1", "--home", str(home)])
    assert resumed.exit_code == 0, resumed.output
    assert not (home / "mlflow.db").exists() and len(study.trials) == 3


def test_a_tie_for_the_best_value_goes_to_the_trial_whose_model_was_kept(tmp_path: Path) -> None:
    """Two trial slots that finish with the same value: the one that kept its model is the one registered."""
    from automl.study import best_trial

    study = optuna.create_study(direction="maximize")
    kept = tmp_path / "trial-1.keras"
    for number in range(3):
        trial = study.ask()
        if number == 1:
            kept.write_bytes(b"model")
            write_trial(trial, checkpoint=str(kept))
        study.tell(trial, 0.5 if number < 2 else 0.25)
    assert study.best_trial.number == 0 and best_trial(study).number == 1
    kept.unlink()
    assert best_trial(study).number == 0, "a checkpoint that is gone breaks no tie"
