"""Workers that start together on a new store: every one opens it, none loses the race to create its tables."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.reliability.conftest import clean_env

# each worker imports what it needs, says so, then waits for the go file: they open the store within a millisecond
READY_THEN_GO = """
import os, sys, time
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
"""
OPEN = """
import sys

from automl.study import open_storage
{ready}
open_storage(sys.argv[1])
print("opened")
"""
CONNECT = """
import sys

from automl.config import resolve_store
from automl.tracking import connect

store = resolve_store(home=sys.argv[1])
{ready}
connect(store).search_experiments()
print("opened")
"""
WORKERS = 4


def _open_together(
    url: str, go: Path, script: str = OPEN, env: dict[str, str] | None = None
) -> list[subprocess.CompletedProcess[str]]:
    code = script.format(ready=READY_THEN_GO)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(WORKERS)
    ]
    ready = [p.stdout.readline().strip() if p.stdout else "" for p in processes]
    go.touch()
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    assert ready == ["ready"] * WORKERS, [r.stderr for r in results]
    return results


def _assert_all_opened(rounds: int, new_url: Callable[[], str], scratch: Path) -> None:
    for attempt in range(rounds):
        fresh = new_url()
        results = _open_together(fresh, scratch / f"go-{attempt}")
        failed = [r.stderr.strip().splitlines()[-1] for r in results if r.returncode != 0]
        assert not failed, f"{len(failed)} of {WORKERS} workers could not open a new storage: {failed[0]}"
        assert all(r.stdout.strip() == "opened" for r in results)
        study = optuna.create_study(storage=fresh, study_name="after")
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        assert len(study.get_trials()) == 2


def test_workers_opening_a_new_sqlite_store_together_all_succeed(tmp_path: Path) -> None:
    """Before the retry, 3 of 4 failed in a round ('table studies already exists', 'UNIQUE constraint failed')."""
    counter = iter(range(100))
    _assert_all_opened(3, lambda: f"sqlite:///{tmp_path / f'optuna-{next(counter)}.db'}", tmp_path)


def test_workers_opening_a_new_postgresql_database_together_all_succeed(postgres_url: str, tmp_path: Path) -> None:
    psycopg = pytest.importorskip("psycopg")

    def new_database() -> str:
        name = f"race_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return f"{postgres_url}/{name}"

    _assert_all_opened(3, new_database, tmp_path)


def test_workers_opening_a_new_mlflow_home_together_all_succeed(tmp_path: Path) -> None:
    """With no migrated template in the cache, MLflow's migrations ran in every process at once: 9 of 12 failed
    ('duplicate column name: step', 'table runs already exists')."""
    for attempt in range(3):
        home = tmp_path / f"home-{attempt}"
        env = {**clean_env(), "AUTOML_CACHE_DIR": str(tmp_path / f"cache-{attempt}")}  # no template: migrate
        results = _open_together(str(home), tmp_path / f"go-{attempt}", CONNECT, env)
        failed = [r.stderr.strip().splitlines()[-1] for r in results if r.returncode != 0]
        assert not failed, f"{len(failed)} of {WORKERS} workers could not open a new home: {failed[0]}"
        client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
        run = client.create_run(client.create_experiment("after"))
        client.log_metric(run.info.run_id, "loss", 0.5, step=1)
        assert client.get_metric_history(run.info.run_id, "loss")[0].value == 0.5
