"""A new study first tries its space's starting configurations: tagged, shown, overridden by pins, turned off."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from automl.record import read_trial
from automl.spaces import load_default_space
from cli.main import app

runner = CliRunner()


def search(table_csv: Path, home: Path, *extra: str) -> None:
    args = ["search", "--data", str(table_csv), "--target", "y", "--trials", "2", "--epochs", "1"]
    result = runner.invoke(app, [*args, "--study", "s", "--home", str(home), "--quiet", "--no-report", *extra])
    assert result.exit_code == 0, result.output


def trials(home: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="s", storage=f"sqlite:///{home / 'optuna.db'}").get_trials()


def origins(home: Path) -> list[str]:
    return [(read_trial(t).origin or "search") for t in trials(home)]


def test_first_trial_is_the_start_tagged_in_mlflow_and_listed(table_csv: Path, home: Path) -> None:
    search(table_csv, home)
    start = load_default_space("mlp").start_points("classification", "table")[0]
    first = trials(home)[0]
    assert {k: read_trial(first).params[k] for k in start} == start
    assert origins(home) == ["start", "search"]

    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("s").experiment_id], "tags.`automl.origin` = 'start'")
    assert len(runs) == 1 and runs[0].info.run_id == read_trial(first).mlflow_run_id
    assert runs[0].data.params["units"] == str(start["units"])

    listed = runner.invoke(app, ["trials", "--study", "s", "--home", str(home), "--json"])
    assert [row["origin"] for row in json.loads(listed.output)] == ["start", "search"]
    table = runner.invoke(app, ["trials", "--study", "s", "--home", str(home)], terminal_width=200)
    assert "origin" in table.output and "start" in table.output


def test_pins_win_over_the_start(table_csv: Path, home: Path) -> None:
    search(table_csv, home, "--set", "units=24", "--set", "optimizer=sgd")
    params = read_trial(trials(home)[0]).params
    start = load_default_space("mlp").start_points("classification", "table")[0]
    assert params["units"] == 24 and params["optimizer"] == "sgd"
    assert params["n_layers"] == start["n_layers"] and params["dropout"] == start["dropout"]
    assert origins(home)[0] == "start"


def test_no_start_and_a_user_space_without_starts_draw_every_trial(table_csv: Path, tmp_path: Path) -> None:
    search(table_csv, tmp_path / "a", "--no-start")
    assert origins(tmp_path / "a") == ["search", "search"]

    space = tmp_path / "space.yaml"
    space.write_text("params:\n  units: {type: int, low: 8, high: 16}\n  n_layers: {type: int, low: 1, high: 2}\n")
    search(table_csv, tmp_path / "b", "--space", str(space))
    assert origins(tmp_path / "b") == ["search", "search"]


def test_a_continued_study_does_not_replay_its_start(table_csv: Path, home: Path) -> None:
    search(table_csv, home)
    search(table_csv, home)
    assert origins(home) == ["start", "search", "search", "search"]
