"""Many workers on one study (Optuna's distributed mode) against an MLflow server backed by PostgreSQL."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from automl.record import read_trial
from tests.reliability.conftest import run_automl, start_automl


def _check_study(storage: str, tracking: str, name: str, expected: int, workers: int) -> None:
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(expected))
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    assert len({read_trial(t).worker for t in trials}) == workers, f"each of the {workers} workers ran trials"
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    parents = [r for r in runs if r.data.tags.get("automl.role") == "study"]
    children = [r for r in runs if r.data.tags.get("automl.role") == "trial"]
    assert len(parents) == 1
    assert sorted(int(r.data.tags["automl.trial_number"]) for r in children) == list(range(expected))
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"


@pytest.mark.parametrize(("kind", "workers", "isolation"), [("postgresql", 4, "none"), ("journal", 2, "process")])
def test_workers_two_trials_each(
    kind: str, workers: int, isolation: str, postgres_url: str, mlflow_server: str, home: Path, table_csv: Path
) -> None:
    """Four workers on PostgreSQL (the many-machines storage); two on a journal file (one machine's).

    With the default isolation (process), the search process drives the workers as trial slots itself, one trial
    process each; with ``--isolation none`` each worker is a process of its own."""
    name = f"w{workers}-{kind}"
    storage = f"{postgres_url}/optuna" if kind == "postgresql" else f"journal:{home / 'journal.log'}"
    start = time.monotonic()
    result = run_automl(
        "search",
        "--data",
        str(table_csv),
        "--target",
        "y",
        "--trials",
        str(2 * workers),
        "--epochs",
        "1",
        "--workers",
        str(workers),
        "--study",
        name,
        "--storage",
        storage,
        "--tracking-uri",
        mlflow_server,
        "--pruner",
        "none",
        "--isolation",
        isolation,
        "--quiet",
        "--json",
        home=home,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["states"]["COMPLETE"] == 2 * workers
    optuna_storage = (
        storage
        if kind == "postgresql"
        else optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(home / "journal.log")))
    )
    _check_study(optuna_storage, mlflow_server, name, 2 * workers, workers)
    # slots: one search process drives them (one trial process each); else a process per worker. Either way
    # the workers' trials overlap in time
    trials = optuna.load_study(study_name=name, storage=optuna_storage).get_trials()
    processes = {str(read_trial(t).worker).split("/")[0] for t in trials}
    assert len(processes) == (1 if isolation == "process" else workers), processes
    spans = sorted((t.datetime_start, t.datetime_complete) for t in trials)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))
    assert time.monotonic() - start < 400


def test_worker_joins_an_existing_study(postgres_url: str, mlflow_server: str, home: Path, table_csv: Path) -> None:
    storage = f"{postgres_url}/optuna"
    first = run_automl(
        "search",
        "--data",
        str(table_csv),
        "--target",
        "y",
        "--trials",
        "2",
        "--epochs",
        "1",
        "--study",
        "join",
        "--storage",
        storage,
        "--tracking-uri",
        mlflow_server,
        "--quiet",
        home=home,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    joined = run_automl(
        "worker",
        "--study",
        "join",
        "--trials",
        "2",
        "--storage",
        storage,
        "--tracking-uri",
        mlflow_server,
        "--quiet",
        home=home,
    )
    assert joined.returncode == 0, joined.stderr[-2000:]
    study = optuna.load_study(study_name="join", storage=storage)
    assert len(study.get_trials()) == 4
    client = MlflowClient(tracking_uri=mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("join").experiment_id], max_results=50)
    assert sum(r.data.tags.get("automl.role") == "study" for r in runs) == 1
    assert sum(r.data.tags.get("automl.role") == "trial" for r in runs) == 4


def test_worker_on_an_unknown_study_is_a_clean_error(postgres_url: str, home: Path) -> None:
    result = run_automl("worker", "--study", "ghost", "--storage", f"{postgres_url}/optuna", home=home)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("automl: error: study 'ghost' not found")


def test_workers_that_join_stop_at_the_studys_budget(
    postgres_url: str, mlflow_server: str, home: Path, table_csv: Path
) -> None:
    """Machines that join without --trials share the budget: the study ends near it, not at N times it."""
    storage = f"{postgres_url}/optuna"
    where = ("--storage", storage, "--tracking-uri", mlflow_server, "--quiet")
    budget = 5
    args = ("--data", str(table_csv), "--target", "y", "--epochs", "2", "--pruner", "none", "--study", "share")
    search = start_automl("search", *args, "--trials", str(budget), *where, home=home)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            if optuna.load_study(study_name="share", storage=storage).get_trials():
                break
        except KeyError:
            pass
        time.sleep(0.5)
    joined = [start_automl("worker", "--study", "share", *where, home=home) for _ in range(2)]
    for process in (search, *joined):
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-2000:]
    finished = [t for t in optuna.load_study(study_name="share", storage=storage).get_trials() if t.state.is_finished()]
    # each process may finish the trial it was running when the budget was reached: at most one more each
    assert budget <= len(finished) <= budget + 2
