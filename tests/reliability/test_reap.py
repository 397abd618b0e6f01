"""A trial left RUNNING by a process of this host that is gone is failed, its run killed, and queued again."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import optuna
import pytest

from automl.record import read_trial, write_trial
from automl.workers import reap_dead_trials


@pytest.mark.parametrize("slot", ["", "/ThreadPoolExecutor-0_1"], ids=["worker-process", "trial-slot"])
def test_a_dead_owners_running_trial_is_failed_killed_and_queued_again(slot: str, tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_name="reap")
    trial = study.ask({"units": optuna.distributions.IntDistribution(1, 8)})
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid is free now: the owner is dead
    write_trial(trial, worker=f"{socket.gethostname()}:{gone.pid}{slot}", mlflow_run_id="run-1")
    alive = study.ask({"units": optuna.distributions.IntDistribution(1, 8)})
    write_trial(alive, worker=f"{socket.gethostname()}:{os.getpid()}{slot}")
    killed: list[tuple[str, str]] = []

    assert reap_dead_trials(study, lambda run, reason: killed.append((run, reason))) == [0]
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {
        0: optuna.trial.TrialState.FAIL,
        1: optuna.trial.TrialState.RUNNING,
        2: optuna.trial.TrialState.WAITING,
    }
    assert killed and killed[0][0] == "run-1" and "died while running it" in killed[0][1]
    assert "died" in str(read_trial(study.get_trials()[0]).error)
