"""Around a real study: report plots on MLflow, reproduce a trial, promote a trial, serve optuna-dashboard."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from automl.record import read_study, read_trial, update_study, write_trial
from cli.main import app

runner = CliRunner()
TRIALS, EPOCHS = 4, 2
ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def _bad(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    line = result.stderr.strip()
    assert line.startswith("automl: error: ") and "\n" not in line, line
    return line


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real search: 4 MLP trials of 2 epochs on a small CSV (string labels, a categorical column)."""
    root = tmp_path_factory.mktemp("eco")
    rng = np.random.default_rng(7)
    n = 150
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    data = root / "eco.csv"
    label = np.where(x1 - x2 + (color == "red") > 0.2, "yes", "no")
    pd.DataFrame({"x1": x1, "x2": x2, "color": color, "y": label}).to_csv(data, index=False)
    home = root / "store"
    result = invoke(
        "search",
        "--data",
        str(data),
        "--target",
        "y",
        "--trials",
        str(TRIALS),
        "--epochs",
        str(EPOCHS),
        "--study",
        "eco",
        "--home",
        str(home),
        "--quiet",
        "--pruner",
        "none",
        "--sampler",
        "random",
    )
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="eco", storage=f"sqlite:///{home / 'optuna.db'}")
    return {"home": home, "data": data, "root": root, "study": study}


def client(home: Path) -> MlflowClient:
    uri = f"sqlite:///{home / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _non_best_trial(study: optuna.Study) -> int:
    best = study.best_trial.number
    return next(t.number for t in study.trials if t.state.name == "COMPLETE" and t.number != best)


# ---- report --------------------------------------------------------------------------------------------------------
def test_report_logs_every_plot_on_the_parent_run_and_into_a_folder(searched: dict[str, Any]) -> None:
    out = searched["root"] / "report"
    result = invoke("report", "--study", "eco", "--home", str(searched["home"]), "--output", str(out))
    assert result.exit_code == 0, result.output
    pngs = {"optimization_history.png", "param_importances.png", "parallel_coordinate.png", "learning_curves.png"}
    assert {p.name for p in out.iterdir()} == pngs | {"report.html"}
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        import matplotlib.image

        assert matplotlib.image.imread(out / name).shape[0] > 200
    html = (out / "report.html").read_text()
    assert html.count("<section>") == 4 and "Plotly.newPlot" in html and "val_accuracy" in html
    parent = read_study(searched["study"]).parent_run_id
    c = client(searched["home"])
    assert c.get_run(parent).data.tags["automl.role"] == "study"
    logged = {Path(a.path).name for a in c.list_artifacts(parent, "report")}
    assert logged == pngs | {"report.html"}
    assert "report/learning_curves.png" in result.stdout


def test_learning_curves_draw_the_top_trials_from_their_history(searched: dict[str, Any]) -> None:
    from automl.report import learning_curves_matplotlib, top_trials

    study = searched["study"]
    top = top_trials(study, 2)
    assert top[0].number == study.best_trial.number and len(top) == 2
    figure = learning_curves_matplotlib(top, "val_accuracy")
    lines = figure.axes[0].get_lines()
    assert len(lines) == 2 and list(lines[0].get_xdata()) == list(range(EPOCHS))
    assert list(lines[0].get_ydata()) == [row["val_accuracy"] for row in read_trial(top[0]).history]
    assert [ax.get_title() for ax in figure.axes] == ["val_accuracy per epoch", "loss per epoch"]


def test_report_pngs_need_no_plotly(searched: dict[str, Any], tmp_path: Path) -> None:
    """In a fresh process where plotly cannot be imported: every PNG, and no HTML."""
    script = f"""
import sys
class NoPlotly:
    def find_spec(self, name, path=None, target=None):
        if name == "plotly" or name.startswith("plotly."):
            raise ImportError("plotly is blocked for this test")
sys.meta_path.insert(0, NoPlotly())
import optuna
from automl.report import write_report, html_available
study = optuna.load_study(study_name="eco", storage="sqlite:///{searched["home"] / "optuna.db"}")
paths = write_report(study, r"{tmp_path / "png"}")
print(html_available(), sorted(p.name for p in paths), "plotly" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("False ") and last.endswith(" False"), last  # no plotly, and none was imported
    pngs = ("optimization_history", "param_importances", "parallel_coordinate", "learning_curves")
    assert "report.html" not in last and all(f"'{name}.png'" in last for name in pngs), last


def test_write_report_on_studies_with_too_few_trials(tmp_path: Path) -> None:
    from automl.report import write_report

    empty = optuna.create_study()
    assert write_report(empty, tmp_path / "empty") == []
    one = optuna.create_study(direction="maximize")
    update_study(one, metric="accuracy")
    trial = one.ask()
    trial.suggest_int("units", 1, 16)
    write_trial(trial, history=[{"val_accuracy": 0.4, "loss": 1.0}, {"val_accuracy": 0.5, "loss": 0.8}])
    one.tell(trial, 0.5)
    written = {p.name for p in write_report(one, tmp_path / "one", html=False)}
    assert "learning_curves.png" in written and "optimization_history.png" in written
    assert "param_importances.png" not in written  # importances need two completed trials


def test_report_bad_inputs(searched: dict[str, Any], home: Path) -> None:
    assert "'nope'" in _bad("report", "--study", "nope", "--home", str(searched["home"]))
    assert "no Optuna storage" in _bad("report", "--study", "eco", "--home", str(home))
    assert "--top" in _bad("report", "--study", "eco", "--top", "0", "--home", str(searched["home"]))


# ---- reproduce -----------------------------------------------------------------------------------------------------
def test_trial_runs_record_what_a_retrain_needs(searched: dict[str, Any]) -> None:
    study = searched["study"]
    assert len(read_study(study).space_sha256) == 64 and len(read_study(study).data_sha256) == 64
    assert read_study(study).config["data"] == str(searched["data"]) and read_study(study).space_text
    c = client(searched["home"])
    for trial in study.trials:
        tags = c.get_run(read_trial(trial).mlflow_run_id).data.tags
        assert tags["automl.seed"] == str(read_trial(trial).seed)
        assert read_trial(trial).params["family"] == "mlp"


def test_provenance_tags_name_the_hashes_and_the_versions() -> None:
    import keras

    from automl.reproduce import provenance_tags

    tags = provenance_tags("a" * 64, "b" * 64)
    assert tags["automl.space_sha256"] == "a" * 64 and tags["automl.data_sha256"] == "b" * 64
    assert tags["automl.version.keras"] == keras.__version__ and tags["automl.version.optuna"] == optuna.__version__
    assert tags["automl.version.keras_backend"] == keras.backend.backend()
    assert {"automl.version.python", "automl.version.numpy", "automl.version.automl"} <= set(tags)


def test_reproduce_retrains_a_trial_to_its_recorded_value(searched: dict[str, Any]) -> None:
    number = _non_best_trial(searched["study"])
    result = invoke("reproduce", "--study", "eco", "--trial", str(number), "--home", str(searched["home"]), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    recorded = searched["study"].trials[number].value
    assert data["recorded"] == recorded and data["matches"] is True
    assert abs(data["reproduced"] - recorded) <= 1e-6 and data["difference"] <= 1e-6
    assert data["history_max_difference"] is not None and data["history_max_difference"] <= 1e-6
    assert data["epochs"] == EPOCHS and data["seed"] == read_trial(searched["study"].trials[number]).seed
    assert data["space_matches"] is True and data["metric"] == "val_accuracy"
    text = invoke("reproduce", "--study", "eco", "--trial", str(number), "--home", str(searched["home"]))
    assert "matches within 1e-06" in text.stdout


def test_reproduce_in_a_fresh_process_from_the_record_alone(searched: dict[str, Any]) -> None:
    number = searched["study"].best_trial.number
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "reproduce",
        "--study",
        "eco",
        "--trial",
        str(number),
        "--json",
        "--home",
        str(searched["home"]),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(done.stdout)
    assert data["matches"] is True and data["history_max_difference"] <= 1e-6


def test_reproduce_bad_inputs(searched: dict[str, Any]) -> None:
    home = str(searched["home"])
    assert "no trial 99" in _bad("reproduce", "--study", "eco", "--trial", "99", "--home", home)
    assert "'nope'" in _bad("reproduce", "--study", "nope", "--trial", "0", "--home", home)
    data: Path = searched["data"]
    original = data.read_bytes()
    frame = pd.read_csv(data)
    frame.loc[0, "x1"] += 1.0
    frame.to_csv(data, index=False)
    try:
        line = _bad("reproduce", "--study", "eco", "--trial", "0", "--home", home)
        assert "eco.csv" in line and "changed" in line
    finally:
        data.write_bytes(original)


# ---- promote -------------------------------------------------------------------------------------------------------
def test_promote_moves_the_champion_alias_to_any_trial(searched: dict[str, Any]) -> None:
    home, study = searched["home"], searched["study"]
    c = client(home)
    assert str(c.get_model_version_by_alias("eco", "champion").version) == "1"
    other = _non_best_trial(study)
    result = invoke("promote", "--study", "eco", "--trial", str(other), "--home", str(home), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["weights"] == "retrained" and data["version"] == "2" and data["model_uri"] == "models:/eco/2"
    version = c.get_model_version_by_alias("eco", "champion")
    assert str(version.version) == "2" and version.tags["automl.trial_number"] == str(other)
    uri = f"sqlite:///{home / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    frame = pd.read_csv(searched["data"]).drop(columns=["y"])
    assert set(mlflow.pyfunc.load_model("models:/eco@champion").predict(frame)) <= {"yes", "no"}
    assert 0.0 <= data["test_metrics"]["test_accuracy"] <= 1.0

    best = invoke("promote", "--study", "eco", "--trial", str(study.best_trial.number), "--home", str(home), "--json")
    assert best.exit_code == 0, best.output
    back = json.loads(best.stdout)
    assert back["weights"] == "checkpoint" and back["version"] == "3"  # the best trial kept its checkpoint
    assert str(c.get_model_version_by_alias("eco", "champion").version) == "3"
    reloaded = optuna.load_study(study_name="eco", storage=f"sqlite:///{home / 'optuna.db'}")
    assert read_study(reloaded).champion["trial"] == study.best_trial.number


def test_promote_bad_inputs(searched: dict[str, Any]) -> None:
    assert "no trial 42" in _bad("promote", "--study", "eco", "--trial", "42", "--home", str(searched["home"]))


# ---- dashboard -----------------------------------------------------------------------------------------------------
def test_dashboard_without_the_extra_says_how_to_install_it(
    searched: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # import raises ImportError
    line = _bad("dashboard", "--study", "eco", "--home", str(searched["home"]))
    assert "pip install 'automl[dashboard]'" in line


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dashboard_serves_the_study_on_loopback(searched: dict[str, Any]) -> None:
    pytest.importorskip("optuna_dashboard")
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "dashboard",
        "--study",
        "eco",
        "--port",
        str(port),
        "--home",
        str(searched["home"]),
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, studies = time.monotonic() + 60, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                    studies = json.loads(response.read())
                break
            except OSError:
                time.sleep(0.5)
        assert studies is not None, process.stderr.read() if process.poll() is not None else "no answer in 60 s"
        assert "eco" in [s["study_name"] for s in studies["study_summaries"]]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard", timeout=5) as response:
            assert response.status == 200 and "<html" in response.read().decode().lower()
    finally:
        process.terminate()
        try:
            _, err = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
    assert f"http://127.0.0.1:{port}/dashboard/studies/" in err


def test_new_commands_have_help() -> None:
    for command in ("report", "reproduce", "promote", "lint", "dashboard"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "--" in result.stdout, command
