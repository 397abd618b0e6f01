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


def test_workers_on_one_machine_are_trial_slots_of_one_search_on_the_default_store(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    """--workers 2 with the default isolation: one search process, two trial processes, SQLite, a starting point."""
    monkeypatch.delenv("AUTOML_ISOLATION", raising=False)
    result = automl.search(
        "demo:wine", trials=4, epochs=1, workers=2, study="slots", home=str(home), report=False, pruner="none"
    )
    assert result.states["COMPLETE"] == 4
    trials = optuna.load_study(study_name="slots", storage=f"sqlite:///{home / 'optuna.db'}").get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3], "exactly the budget, and no trial taken by two slots"
    attrs = [read_trial(t) for t in trials]
    assert len({a.child_pid for a in attrs}) == 2, "a trial process per slot"
    assert len({a.worker for a in attrs}) == 2 and len({str(a.worker).split("/")[0] for a in attrs}) == 1
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4, "four different configurations"
    (kept,) = sorted((home / "checkpoints" / "slots").glob("*.keras"))  # only one model is kept: a best one
    owner = next(t for t in trials if read_trial(t).checkpoint == str(kept))
    assert owner.value == max(float(t.value or 0.0) for t in trials)  # (of equal values, the first to finish)
