"""A new local MLflow store starts from a migrated empty template, and behaves as a freshly migrated one."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from automl.config import resolve_store
from automl.sqlite_tuning import seed_mlflow_db
from automl.tracking import connect


def _count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_the_first_home_leaves_a_template_and_the_next_one_starts_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("AUTOML_CACHE_DIR", str(cache))
    first = resolve_store(tmp_path / "first")
    connect(first).search_experiments()
    templates = list(cache.glob("mlflow-*-empty.db"))
    assert len(templates) == 1
    assert _count(templates[0], "experiments") == 0, "the template holds no experiment of the home it came from"
    assert _count(templates[0], "alembic_version") == 1

    second = resolve_store(tmp_path / "second")
    db = Path(second.tracking_uri.removeprefix("sqlite:///"))
    assert seed_mlflow_db(db) and db.exists()
    opened = time.time() * 1000
    client = connect(second)
    default = client.get_experiment("0")
    assert default.name == "Default" and default.creation_time >= opened - 1000, "re-created for this home"
    assert default.artifact_location == connect(first).get_experiment("0").artifact_location
    experiment = client.create_experiment("x", artifact_location=second.artifacts_dir.as_uri())
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "m", 1.0)
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}
    assert _count(templates[0], "runs") == 0, "the template itself is never written to"


def test_without_a_writable_cache_a_home_is_migrated_as_usual(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("AUTOML_CACHE_DIR", str(blocked / "cache"))
    store = resolve_store(tmp_path / "home")
    client = connect(store)
    assert client.get_experiment("0").name == "Default"
