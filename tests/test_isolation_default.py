"""The default isolation: trials in a long-lived trial process, unless AUTOML_ISOLATION or --isolation says
otherwise."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient
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


class _StopAt(optuna.pruners.BasePruner):
    """Prunes trial 0 at its epoch ``step``; any other trial runs to the end."""

    def __init__(self, step: int) -> None:
        self.step = step

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number == 0 and (trial.last_step or 0) >= self.step


class _SlowProgress:
    """A progress listener that takes its time, so the trial process trains ahead of the answers."""

    def on_epoch(self, number: int, epoch: int, epochs: int, value: float) -> None:
        time.sleep(0.3)

    def on_start(self, *args: Any) -> None:
        pass

    def on_progress(self, *args: Any) -> None:
        pass

    def on_finalize(self, *args: Any) -> None:
        pass


def test_a_trial_process_trains_on_while_the_search_decides_and_the_study_sees_what_it_was_told(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    """Epoch reports do not wait for the pruner: the study and the run still end at the pruned epoch, and no
    answer is left over for the next trial."""
    from automl.execution import pool
    from automl.runner import prepare, run_trials

    monkeypatch.delenv("AUTOML_ISOLATION", raising=False)
    messages: list[int] = []
    run = pool.PoolExecutor.run

    def counting(self: pool.PoolExecutor, job: Any, report: Any = None, *args: Any) -> Any:
        def counted(epoch: int, value: float) -> bool:
            messages.append(epoch)
            return bool(report(epoch, value))

        return run(self, job, counted if report else None, *args)

    monkeypatch.setattr(pool.PoolExecutor, "run", counting)
    config = SearchConfig(data="demo:wine", trials=2, epochs=30, study="ahead", home=str(home), report=False)
    session = prepare(config)
    session.study.pruner = _StopAt(2)
    run_trials(session, 2, progress=_SlowProgress())

    first, second = session.study.get_trials()
    assert first.state == optuna.trial.TrialState.PRUNED and sorted(first.intermediate_values) == [0, 1, 2]
    assert messages.count(0) == 2 and len([e for e in messages[: messages.index(0, 1)] if e > 2]) > 0, (
        "the trial process reported epochs past the pruned one: it did not wait for the answers"
    )
    client = MlflowClient(tracking_uri=session.store.tracking_uri)
    logged = client.get_metric_history(str(read_trial(first).mlflow_run_id), "val_accuracy")
    assert sorted(m.step for m in logged) == [0, 1, 2], "the run holds the epochs the study was told"
    assert second.state == optuna.trial.TrialState.COMPLETE and len(second.intermediate_values) == 30
    assert len(read_trial(second).history or []) == 30


def test_a_deterministic_trial_in_a_trial_process_reproduces_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--deterministic on the default path: the same search twice gives the same values and histories, exactly,
    and ``reproduce`` (in this process) retrains each trial to exactly its recorded value."""
    from automl.reproduce import reproduce

    monkeypatch.delenv("AUTOML_ISOLATION", raising=False)
    runs = []
    for attempt in ("a", "b"):
        home = tmp_path / attempt
        options = {"trials": 2, "epochs": 3, "study": "det", "home": str(home), "report": False, "seed": 7}
        result = automl.search("demo:wine", deterministic=True, pruner="none", **options)
        assert result.states["COMPLETE"] == 2
        trials = optuna.load_study(study_name="det", storage=f"sqlite:///{home / 'optuna.db'}").get_trials()
        assert all(read_trial(t).deterministic_ops is True for t in trials)
        assert {read_trial(t).child_pid for t in trials} != {os.getpid()}, "trained in a trial process"
        runs.append([(t.value, read_trial(t).history) for t in trials])
        for trial in trials:
            again = reproduce("det", trial.number, home=str(home))
            assert again.deterministic and again.reproduced == trial.value, (again.reproduced, trial.value)
            assert again.history_max_difference == 0.0
    assert runs[0] == runs[1], "two searches with the same seed trained the same models, bit for bit"


def test_thread_counts_reach_every_trial_process(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Read off the processes that trained: AUTOML_THREADS for one slot; the cores split between CPU slots."""
    monkeypatch.delenv("AUTOML_ISOLATION", raising=False)
    monkeypatch.setenv("AUTOML_THREADS", "1")
    automl.search("demo:wine", trials=2, epochs=1, study="one", home=str(home), report=False, pruner="none")
    monkeypatch.delenv("AUTOML_THREADS")
    automl.search("demo:wine", trials=2, epochs=1, study="default", home=str(home), report=False, pruner="none")
    automl.search(
        "demo:wine", trials=2, epochs=1, workers=2, study="split", home=str(home), report=False, pruner="none"
    )
    storage = f"sqlite:///{home / 'optuna.db'}"

    def recorded(study: str) -> list[tuple[int | None, int | None]]:
        trials = optuna.load_study(study_name=study, storage=storage).get_trials()
        assert len(trials) == 2 and all(read_trial(t).child_pid not in (None, os.getpid()) for t in trials)
        return [(read_trial(t).threads, read_trial(t).child_pid) for t in trials]

    assert [threads for threads, _ in recorded("one")] == [1, 1]
    assert [threads for threads, _ in recorded("default")] == [0, 0], "TensorFlow's own default: every core"
    split = recorded("split")
    assert len({pid for _, pid in split}) == 2, "a trial process per slot"
    assert [threads for threads, _ in split] == [max(1, (os.cpu_count() or 1) // 2)] * 2
