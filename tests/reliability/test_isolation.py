"""--isolation process: trials train in child processes; a crashed or killed child fails only its trial."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import optuna

from automl.record import read_trial
from tests.reliability.conftest import start_automl


def _child_pid(home: Path, study: str, number: int, timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            loaded = optuna.load_study(study_name=study, storage=f"sqlite:///{home / 'optuna.db'}")
            for trial in loaded.get_trials():
                # RUNNING and an epoch reported: the kill lands inside this trial's fit, not the next trial's (the
                # long-lived trial process runs both)
                running = trial.state == optuna.trial.TrialState.RUNNING and trial.intermediate_values
                if trial.number == number and running and read_trial(trial).child_pid is not None:
                    return int(read_trial(trial).child_pid)
        except Exception:  # the study is not created yet
            pass
        time.sleep(0.3)
    raise AssertionError(f"trial {number} never started a child process")


def _search(home: Path, data: Path, study: str, *extra: str) -> object:
    return start_automl(
        "search",
        "--data",
        str(data),
        "--target",
        "y",
        "--trials",
        "2",
        "--epochs",
        "80",
        "--study",
        study,
        "--pruner",
        "none",
        "--isolation",
        "process",
        "--set",
        "batch_size=32",
        "--quiet",
        "--json",
        *extra,
        home=home,
    )


def test_a_killed_trial_process_fails_its_trial_and_the_search_goes_on(home: Path, table_csv: Path) -> None:
    process = _search(home, table_csv, "crash")
    child = _child_pid(home, "crash", 0)
    assert child != process.pid
    os.kill(child, signal.SIGKILL)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    assert json.loads(out)["best_trial"] == 1
    trials = optuna.load_study(study_name="crash", storage=f"sqlite:///{home / 'optuna.db'}").get_trials()
    assert trials[0].state == optuna.trial.TrialState.FAIL
    assert "killed by SIGKILL" in read_trial(trials[0]).error
    assert trials[1].state == optuna.trial.TrialState.COMPLETE
    assert read_trial(trials[1]).child_pid not in (child, process.pid)


def test_oom_retry_runs_the_trial_again_at_half_batch(home: Path, table_csv: Path) -> None:
    process = _search(home, table_csv, "oom", "--oom-retry")
    os.kill(_child_pid(home, "oom", 0), signal.SIGKILL)  # what the kernel's OOM killer does
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    first = optuna.load_study(study_name="oom", storage=f"sqlite:///{home / 'optuna.db'}").get_trials()[0]
    assert first.state == optuna.trial.TrialState.COMPLETE
    assert read_trial(first).oom_retry["batch_size"] == 16
    assert "SIGKILL" in read_trial(first).oom_retry["reason"]
