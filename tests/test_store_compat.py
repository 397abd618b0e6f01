"""A store written by release 0.1.0 (study facts under separate Optuna attrs) still reads, resumes and registers.

``tests/stores/release-0.1.0-wine.tar.gz`` is the home of ``automl search --data demo:wine --trials 2 --epochs 1
--study legacy --no-report`` run by the code before the typed study record, kept as it was written.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import mlflow
import optuna
import pytest
from typer.testing import CliRunner

from automl.record import RECORD_KEY, RECORD_VERSION, read_study, stored_attrs
from cli.main import app

ARCHIVE = Path(__file__).parent / "stores" / "release-0.1.0-wine.tar.gz"


@pytest.fixture()
def legacy_home(tmp_path: Path) -> Path:
    home = tmp_path / "moved-home"
    home.mkdir()
    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(home, filter="data")
    return home


def _study(home: Path) -> optuna.Study:
    return optuna.load_study(study_name="legacy", storage=f"sqlite:///{home / 'optuna.db'}")


def test_the_previous_releases_study_reads_as_a_record(legacy_home: Path) -> None:
    study = _study(legacy_home)
    assert RECORD_KEY not in stored_attrs(study)  # written before the record existed
    record = read_study(study)
    assert record.version == 0
    assert (record.family, record.task, record.metric, record.direction) == (
        "mlp",
        "classification",
        "accuracy",
        "maximize",
    )
    assert record.budget == 2 and record.config["trials"] == 2 and record.parent_run_id
    assert record.model is not None and record.model.register_name == "legacy"
    assert record.model.uri == "models:/legacy/1" and record.model.trial in (0, 1)
    assert set(record.model.test_metrics) == {"test_accuracy", "test_log_loss"}
    assert len(record.space_sha256 or "") == 64 and len(record.data_sha256 or "") == 64


def test_the_previous_releases_study_resumes_in_a_moved_home(
    legacy_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOML_ISOLATION", "none")
    before = read_study(_study(legacy_home))
    runner = CliRunner()
    resumed = runner.invoke(app, ["resume", "--study", "legacy", "--trials", "1", "--home", str(legacy_home)])
    assert resumed.exit_code == 0, resumed.output
    study = _study(legacy_home)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    record = read_study(study)
    assert record.version == RECORD_VERSION and stored_attrs(study)[RECORD_KEY]["budget"] == 3
    assert record.parent_run_id == before.parent_run_id  # the same parent run, continued
    client = mlflow.MlflowClient(f"sqlite:///{legacy_home / 'mlflow.db'}")
    parents = client.search_runs(
        [client.get_experiment_by_name("legacy").experiment_id], "tags.`automl.role` = 'study'"
    )
    assert [run.info.run_id for run in parents] == [before.parent_run_id]
    children = client.search_runs(
        [parents[0].info.experiment_id], f"tags.mlflow.parentRunId = '{before.parent_run_id}'"
    )
    assert len(children) == 3
    best = runner.invoke(app, ["best", "--study", "legacy", "--home", str(legacy_home), "--json"])
    assert best.exit_code == 0, best.output
    shown = json.loads(best.output)
    assert shown["model_uri"] and shown["model_uri"].startswith("models:/legacy/")
    assert shown["number"] == study.best_trial.number
