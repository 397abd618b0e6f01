"""Workers that start together on a new database: every one opens the storage, none loses the race for its tables."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

OPEN_AT = """
import sys, time
from automl.study import open_storage

start = float(sys.argv[2])
while time.time() < start:
    pass
open_storage(sys.argv[1])
print("opened")
"""
WORKERS = 4


def _open_together(url: str) -> list[subprocess.CompletedProcess[str]]:
    start = time.time() + 8  # after every interpreter has imported optuna and SQLAlchemy
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT, url, str(start)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(WORKERS)
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in processes]


def _assert_all_opened(rounds: int, new_url: Callable[[], str]) -> None:
    for _ in range(rounds):
        fresh = new_url()
        results = _open_together(fresh)
        failed = [r.stderr.strip().splitlines()[-1] for r in results if r.returncode != 0]
        assert not failed, f"{len(failed)} of {WORKERS} workers could not open a new storage: {failed[0]}"
        assert all(r.stdout.strip() == "opened" for r in results)
        study = optuna.create_study(storage=fresh, study_name="after")
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        assert len(study.get_trials()) == 2


def test_workers_opening_a_new_sqlite_store_together_all_succeed(tmp_path: Path) -> None:
    """Without the retry about half of them failed ('table studies already exists', 'UNIQUE constraint failed')."""
    counter = iter(range(100))
    _assert_all_opened(3, lambda: f"sqlite:///{tmp_path / f'optuna-{next(counter)}.db'}")


def test_workers_opening_a_new_postgresql_database_together_all_succeed(postgres_url: str) -> None:
    psycopg = pytest.importorskip("psycopg")

    def new_database() -> str:
        name = f"race_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return f"{postgres_url}/{name}"

    _assert_all_opened(2, new_database)
