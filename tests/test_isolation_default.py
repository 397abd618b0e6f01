"""The default isolation: trials in a long-lived trial process, unless AUTOML_ISOLATION or --isolation says
otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

import automl
from automl.config import SearchConfig
from automl.record import read_trial
from cli.main import app


def test_the_default_is_a_long_lived_trial_process(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.delenv("AUTOML_ISOLATION", raising=False)
    assert SearchConfig(data="demo:wine").isolation == "process"
    result = automl.search("demo:wine", trials=3, epochs=1, study="iso", home=str(home), report=False, pruner="none")
    assert result.states["COMPLETE"] == 3
    trials = optuna.load_study(study_name="iso", storage=f"sqlite:///{home / 'optuna.db'}").get_trials()
    pids = {read_trial(t).child_pid for t in trials}
    assert None not in pids and os.getpid() not in pids
    assert len(pids) == 1, "one trial process ran every trial, one after another"
    kept = [t for t in trials if read_trial(t).checkpoint]
    assert len(kept) == 1 and Path(str(read_trial(kept[0]).checkpoint)).is_file(), "only the best model is kept"
    assert not list((home / "checkpoints" / "iso" / "scratch").glob("*.keras")), "no model left in scratch"


def test_a_trial_process_is_replaced_after_its_trial_quota(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.delenv("AUTOML_ISOLATION", raising=False)
    automl.search("demo:wine", trials=3, epochs=1, study="quota", home=str(home), report=False, worker_max_trials=2)
    trials = optuna.load_study(study_name="quota", storage=f"sqlite:///{home / 'optuna.db'}").get_trials()
    pids = [read_trial(t).child_pid for t in trials]
    assert pids[0] == pids[1] != pids[2], pids


def test_the_environment_variable_and_the_option_choose_in_process(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("AUTOML_ISOLATION", "none")
    assert SearchConfig(data="demo:wine").isolation == "none"
    monkeypatch.setenv("AUTOML_ISOLATION", "sandbox")
    result = CliRunner().invoke(app, ["search", "--data", "demo:wine", "--trials", "1", "--home", str(home)])
    assert result.exit_code == 2 and "--isolation 'sandbox' is not one of none, process" in result.output
    assert not (home / "optuna.db").exists(), "refused before any study was created"
