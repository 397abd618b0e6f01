"""Failures inside trials: exceptions, NaN losses, consecutive failures, refused model files."""

from __future__ import annotations

from pathlib import Path

import keras
import optuna
import pytest
from mlflow.tracking import MlflowClient

import automl
from automl.errors import AutoMLError
from automl.record import read_trial


def _runs(home: Path, study: str) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study)
    return client.search_runs([experiment.experiment_id], max_results=200)


def test_exceptions_fail_trials_with_traceback_and_max_failures_stops(
    home: Path, table_csv: Path, tmp_path: Path
) -> None:
    space = tmp_path / "broken.yaml"
    # Dense(0) cannot be built: every trial raises inside the family builder
    space.write_text("params:\n  n_layers: {type: int, low: 1, high: 2}\n  units: {type: int, low: 0, high: 0}\n")
    # the pre-search lint refuses this space before any study or run exists ...
    with pytest.raises(AutoMLError, match="branches of family 'mlp' fail to build"):
        automl.search(str(table_csv), target="y", space=str(space), trials=10, epochs=1, study="boom", home=str(home))
    assert not (home / "optuna.db").exists() and not (home / "mlflow.db").exists()
    # ... and without it, every trial fails at build time and --max-failures stops the study
    result = automl.search(
        str(table_csv),
        target="y",
        space=str(space),
        trials=10,
        epochs=1,
        study="boom",
        home=str(home),
        max_failures=3,
        lint=False,
    )
    assert result.best_trial is None
    assert result.stopped_reason is not None and "3 consecutive failed trials" in result.stopped_reason
    study = optuna.load_study(study_name="boom", storage=f"sqlite:///{home / 'optuna.db'}")
    trials = study.get_trials()
    assert len(trials) == 3 and all(t.state == optuna.trial.TrialState.FAIL for t in trials)
    assert all("Traceback" in read_trial(t).traceback and read_trial(t).error for t in trials)
    children = [r for r in _runs(home, "boom") if r.data.tags.get("automl.role") == "trial"]
    assert len(children) == 3
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    for run in children:
        assert run.info.status == "FAILED" and run.data.tags["automl.state"] == "FAIL"
        assert "automl.error" in run.data.tags
        assert "traceback.txt" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_nan_loss_fails_the_trial_and_is_never_best(home: Path, regression_csv: Path) -> None:
    result = automl.search(
        str(regression_csv),
        target="target",
        trials=3,
        epochs=2,
        study="nan",
        home=str(home),
        fixed={
            "optimizer": "sgd",
            "learning_rate": "1e12",
            "loss": "mse",
            "batch_norm": "false",
            "activation": "relu",
            "momentum": "0.9",
            "dropout": "0",
        },
        max_failures=3,
    )
    study = optuna.load_study(study_name="nan", storage=f"sqlite:///{home / 'optuna.db'}")
    states = {t.state for t in study.get_trials()}
    assert states == {optuna.trial.TrialState.FAIL}
    assert all("non-finite" in read_trial(t).error or "loss is" in read_trial(t).error for t in study.get_trials())
    assert result.best_trial is None and result.model_uri is None


def test_a_keras_file_with_a_lambda_layer_is_refused(tmp_path: Path) -> None:
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(AutoMLError, match="safe_mode"):
        automl.load_model(str(path))


def test_read_only_artifacts_give_a_clear_error_and_keep_the_trials(home: Path, table_csv: Path) -> None:
    import subprocess

    from typer.testing import CliRunner

    from cli.main import app

    first = automl.search(str(table_csv), target="y", trials=2, epochs=1, study="ro", home=str(home))
    assert first.best_trial is not None
    artifacts = home / "artifacts"
    locked = subprocess.run(["chattr", "-R", "+i", str(artifacts)], capture_output=True, text=True)
    try:
        probe = artifacts / "probe"
        try:
            probe.write_text("x")
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip(f"this file system cannot make a directory read-only for root: {locked.stderr.strip()}")
        result = CliRunner().invoke(
            app,
            [
                "search",
                "--data",
                str(table_csv),
                "--target",
                "y",
                "--trials",
                "1",
                "--epochs",
                "1",
                "--study",
                "ro",
                "--home",
                str(home),
            ],
        )
        assert result.exit_code == 2, result.output
        line = result.stderr.strip()
        assert line.startswith("automl: error: cannot write MLflow artifacts") and "\n" not in line
    finally:
        subprocess.run(["chattr", "-R", "-i", str(artifacts)], capture_output=True)
    study = optuna.load_study(study_name="ro", storage=f"sqlite:///{home / 'optuna.db'}")
    assert [t.value for t in study.get_trials()] == [t.value for t in study.get_trials()[:2]]
    assert len(study.get_trials()) == 2 and all(t.value is not None for t in study.get_trials())
    children = [r for r in _runs(home, "ro") if r.data.tags.get("automl.role") == "trial"]
    assert len(children) == 2 and all("val_accuracy" in r.data.metrics for r in children)


def test_a_run_that_cannot_be_closed_is_a_warning_and_the_trials_stay_recorded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, home: Path
) -> None:
    """A finished trial's run is closed on a background thread: a tracking error there loses no trial."""
    from automl.tracking import Tracker

    finish = Tracker.finish_trial

    def failing(self: Tracker, run_id: str, state: str, *args: object, **kwargs: object) -> None:
        if state == "COMPLETE":
            raise RuntimeError("tracking server went away")
        finish(self, run_id, state, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Tracker, "finish_trial", failing)
    with caplog.at_level("WARNING", logger="automl.objective"):
        result = automl.search(
            "demo:wine", trials=2, epochs=1, study="close", home=str(home), report=False, isolation="none"
        )
    assert result.states["COMPLETE"] == 2
    assert sum("could not be closed: tracking server went away" in r.getMessage() for r in caplog.records) == 2
    trials = optuna.load_study(study_name="close", storage=f"sqlite:///{home / 'optuna.db'}").get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(read_trial(t).history for t in trials)
