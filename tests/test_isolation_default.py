"""The default isolation: each trial in a child process, unless AUTOML_ISOLATION or --isolation says otherwise."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

import automl
from automl.config import SearchConfig
from automl.record import read_trial
from cli.main import app


def test_the_default_is_a_child_process_per_trial(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.delenv("AUTOML_ISOLATION", raising=False)
    assert SearchConfig(data="demo:wine").isolation == "process"
    result = automl.search("demo:wine", trials=2, epochs=1, study="iso", home=str(home), report=False)
    assert result.states["COMPLETE"] + result.states["PRUNED"] == 2
    trials = optuna.load_study(study_name="iso", storage=f"sqlite:///{home / 'optuna.db'}").get_trials()
    pids = {read_trial(t).child_pid for t in trials}
    assert None not in pids and len(pids) == 2, "every trial trained in a child process of its own"


def test_the_environment_variable_and_the_option_choose_in_process(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("AUTOML_ISOLATION", "none")
    assert SearchConfig(data="demo:wine").isolation == "none"
    monkeypatch.setenv("AUTOML_ISOLATION", "sandbox")
    result = CliRunner().invoke(app, ["search", "--data", "demo:wine", "--trials", "1", "--home", str(home)])
    assert result.exit_code == 2 and "--isolation 'sandbox' is not one of none, process" in result.output
    assert not (home / "optuna.db").exists(), "refused before any study was created"
