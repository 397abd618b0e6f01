"""Kill a search mid-fit (SIGTERM, SIGKILL), then resume: nothing finished is lost, the dead trial is retried."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from automl.record import read_trial
from tests.reliability.conftest import run_automl, start_automl

RUNNING, COMPLETE, FAIL = (
    optuna.trial.TrialState.RUNNING,
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.FAIL,
)


def _study(home: Path, name: str) -> optuna.Study | None:
    if not (home / "optuna.db").exists():
        return None
    try:
        # an observer: it must not create the tables the search is creating
        storage = optuna.storages.RDBStorage(f"sqlite:///{home / 'optuna.db'}", skip_table_creation=True)
        return optuna.load_study(study_name=name, storage=storage)
    except (KeyError, Exception):
        return None


def _wait_for_running(process: subprocess.Popen[str], home: Path, name: str, number: int, timeout: float = 600) -> None:
    """Wait until trial ``number`` is inside model.fit; the bound is generous for a loaded CI machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the search exited ({process.returncode}) first: {process.communicate()[1][-2000:]}")
        study = _study(home, name)
        trials = [] if study is None else study.get_trials()
        if any(t.number == number and t.state == RUNNING and t.intermediate_values for t in trials):
            return  # it reported an epoch: inside model.fit
        time.sleep(0.3)
    raise AssertionError(f"trial {number} of {name} never reported an epoch")


def _runs(home: Path, name: str) -> dict[int, object]:
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("automl.role") == "study"]
    assert len(parents) == 1, "there must never be a second parent run"
    return {int(r.data.tags["automl.trial_number"]): r for r in runs if r.data.tags.get("automl.role") == "trial"}


def test_sigterm_fails_the_trial_kills_its_run_and_resume_carries_on(home: Path, table_csv: Path) -> None:
    process = start_automl(
        "search",
        "--data",
        str(table_csv),
        "--target",
        "y",
        "--trials",
        "3",
        "--epochs",
        "150",
        "--study",
        "sig",
        "--pruner",
        "none",
        "--quiet",
        home=home,
    )
    _wait_for_running(process, home, "sig", 0)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=180)
    # The FAIL states below show it did not wait for the trials; this bounds the shutdown itself (about 1 s on a
    # 2-core machine with one other job, over 30 s when CI shares it with several).
    assert time.monotonic() - sent < 120, "the process must exit promptly"
    assert process.returncode not in (0, None), stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr  # --quiet: the trial's run keeps the traceback, the terminal gets lines
    study = _study(home, "sig")
    assert study is not None and study.get_trials()[0].state == FAIL
    runs = _runs(home, "sig")
    assert runs[0].info.status == "KILLED" and runs[0].data.tags["automl.state"] == "FAIL"

    resumed = run_automl("resume", "--study", "sig", "--trials", "1", "--quiet", home=home)
    assert resumed.returncode == 0, resumed.stderr
    trials = _study(home, "sig").get_trials()
    assert [t.state for t in trials] == [FAIL, COMPLETE]
    assert len(_runs(home, "sig")) == 2


def test_sigterm_with_two_trial_slots_fails_both_running_trials_and_resume_carries_on(
    home: Path, table_csv: Path
) -> None:
    """--workers 2 on the default isolation: one search process, two trials running at once in two slots."""
    process = start_automl(
        "search", "--data", str(table_csv), "--target", "y", "--trials", "4", "--epochs", "150", "--study", "slots",
        "--pruner", "none", "--workers", "2", "--isolation", "process", "--quiet", home=home,
    )  # fmt: skip
    _wait_for_running(process, home, "slots", 0)
    _wait_for_running(process, home, "slots", 1)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=180)
    # The FAIL states below show it did not wait for the trials; this bounds the shutdown itself (about 1 s on a
    # 2-core machine with one other job, over 30 s when CI shares it with several).
    assert time.monotonic() - sent < 120, "the process must exit promptly"
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    study = _study(home, "slots")
    assert study is not None and [t.state for t in study.get_trials()] == [FAIL, FAIL]
    runs = _runs(home, "slots")
    assert sorted(runs) == [0, 1] and all(r.info.status == "KILLED" for r in runs.values())

    resumed = run_automl("resume", "--study", "slots", "--trials", "1", "--quiet", home=home)
    assert resumed.returncode == 0, resumed.stderr
    assert [t.state for t in _study(home, "slots").get_trials()] == [FAIL, FAIL, COMPLETE]


def test_sigkill_mid_fit_then_resume_keeps_completed_and_retries_the_dead_trial(home: Path, table_csv: Path) -> None:
    process = start_automl(
        "search",
        "--data",
        str(table_csv),
        "--target",
        "y",
        "--trials",
        "3",
        "--epochs",
        "100",  # trial 1 must stay in fit long enough for the poll below to see it, on a loaded machine too
        "--study",
        "kill",
        "--pruner",
        "none",
        "--quiet",
        home=home,
    )
    _wait_for_running(process, home, "kill", 1)
    process.kill()
    process.wait(timeout=60)
    before = _study(home, "kill").get_trials()
    assert before[0].state == COMPLETE and before[1].state == RUNNING

    resumed = run_automl("resume", "--study", "kill", "--trials", "1", "--quiet", "--json", home=home)
    assert resumed.returncode == 0, resumed.stderr
    after = _study(home, "kill").get_trials()
    assert after[0].state == COMPLETE and after[0].value == before[0].value
    assert after[1].state == FAIL and "died" in read_trial(after[1]).error
    retried = [t for t in after if read_trial(t).retried_from == 1]
    assert len(retried) == 1 and retried[0].state == COMPLETE
    assert retried[0].params == before[1].params
    runs = _runs(home, "kill")
    assert runs[1].info.status == "KILLED"
    assert runs[retried[0].number].info.status == "FINISHED"


WRAPPING_HYPERMODEL = """
import os
import signal
import subprocess
import time

import keras
import tensorflow as tf


def _sigterm_inside_an_op(x):
    os.kill(os.getpid(), signal.SIGTERM)  # Python's handler runs here, under the op
    time.sleep(0.5)
    return x


class Model:
    def build(self, hp):
        model = keras.Sequential([keras.Input(shape=(13,)), keras.layers.Dense(hp.Int("units", 4, 8)),
                                  keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    def fit(self, hp, model, *args, **kwargs):
        tf.py_function(_sigterm_inside_an_op, [tf.constant(1.0)], tf.float32)
        return model.fit(*args, **kwargs)


model = Model()
"""


def test_an_interrupt_that_tensorflow_wraps_still_stops_the_search(tmp_path: Path, home: Path) -> None:
    """SIGTERM during a TF op surfaces as tf.errors.UnknownError; the search must stop, not go to the next trial."""
    import automl

    module = tmp_path / "wrapping.py"
    module.write_text(WRAPPING_HYPERMODEL)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        automl.search(
            "demo:wine", hypermodel=f"{module}:model", trials=3, epochs=1, study="wrapped", report=False, home=str(home)
        )
    assert signal.getsignal(signal.SIGTERM) is before, "the handler must be put back"
    trials = _study(home, "wrapped").get_trials()
    assert [t.state for t in trials] == [FAIL], "no trial may start after the interrupt"
    assert "UnknownError" in read_trial(trials[0]).error or "KeyboardInterrupt" in read_trial(trials[0]).error
    run = _runs(home, "wrapped")[0]
    assert run.info.status == "KILLED" and run.data.tags["automl.state"] == "FAIL"
