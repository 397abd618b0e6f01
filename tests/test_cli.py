"""The CLI in-process (Typer's runner): one real search, its MLflow schema, and every bad input's exit 2."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import mlflow
import optuna
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()
TRIALS, EPOCHS = 6, 2


def invoke(*args: str) -> object:
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One real search: 6 trials of a MLP on a CSV with string labels, NaNs and a categorical column."""
    import numpy as np

    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    n = 150
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    label = np.where(x1 + (color == "red") > 0.3, "yes", "no")
    x2[::13] = np.nan
    data = root / "some.csv"
    pd.DataFrame({"x1": x1, "x2": x2, "color": color, "y": label}).to_csv(data, index=False)
    home = root / "store"
    result = invoke(
        "search",
        "--family",
        "mlp",
        "--data",
        str(data),
        "--target",
        "y",
        "--trials",
        str(TRIALS),
        "--epochs",
        str(EPOCHS),
        "--study",
        "s",
        "--home",
        str(home),
        "--quiet",
        "--pruner",
        "none",
    )
    assert result.exit_code == 0, result.output
    return {"home": home, "data": data, "root": root}


def client(home: Path) -> MlflowClient:
    uri = f"sqlite:///{home / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_store_layout(searched: dict[str, Path]) -> None:
    home = searched["home"]
    assert (home / "mlflow.db").is_file()
    assert (home / "optuna.db").is_file()
    assert (home / "artifacts").is_dir() and any((home / "artifacts").iterdir())


def test_mlflow_schema_one_parent_and_a_child_per_trial(searched: dict[str, Path]) -> None:
    c = client(searched["home"])
    experiment = c.get_experiment_by_name("s")
    assert experiment is not None
    runs = c.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("automl.role") == "study"]
    children = [r for r in runs if r.data.tags.get("automl.role") == "trial"]
    assert len(parents) == 1 and len(children) == TRIALS
    parent = parents[0]
    assert sorted(int(r.data.tags["automl.trial_number"]) for r in children) == list(range(TRIALS))
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        state = run.data.tags["automl.state"]
        assert state in ("COMPLETE", "PRUNED", "FAIL")
        assert run.info.status == ("FAILED" if state == "FAIL" else "FINISHED")
        for param in ("family", "loss", "optimizer", "learning_rate", "batch_size", "n_layers", "units"):
            assert param in run.data.params
        assert run.data.params["family"] == "mlp"
        history = c.get_metric_history(run.info.run_id, "val_accuracy")
        assert [m.step for m in history] == list(range(EPOCHS))
        assert [m.step for m in c.get_metric_history(run.info.run_id, "loss")] == list(range(EPOCHS))
    artifacts = {a.path for a in c.list_artifacts(parent.info.run_id)}
    assert {"space.yaml", "data.json"} <= artifacts
    description = json.loads(
        c.download_artifacts(parent.info.run_id, "data.json", str(searched["root"]))
        and (searched["root"] / "data.json").read_text()
    )
    assert description["rows"] == 150 and description["target"] == "y" and len(description["sha256"]) == 64
    assert description["task"] == "classification"
    metrics = parent.data.metrics
    assert {"best_value", "best_trial_number", "test_accuracy"} <= set(metrics)
    best = optuna.load_study(study_name="s", storage=f"sqlite:///{searched['home'] / 'optuna.db'}").best_trial
    assert metrics["best_trial_number"] == best.number
    assert metrics["best_value"] == pytest.approx(best.value)
    assert 0.0 <= metrics["test_accuracy"] <= 1.0


def test_champion_predicts_raw_rows_in_the_label_space(searched: dict[str, Path]) -> None:
    uri = f"sqlite:///{searched['home'] / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    assert str(client(searched["home"]).get_model_version_by_alias("s", "champion").version) == "1"
    frame = pd.read_csv(searched["data"]).drop(columns=["y"])
    predictions = mlflow.pyfunc.load_model("models:/s@champion").predict(frame)
    assert len(predictions) == len(frame)
    assert set(predictions) <= {"yes", "no"}
    truth = pd.read_csv(searched["data"])["y"].to_numpy()
    assert (predictions == truth).mean() > 0.6  # better than the majority class on this data


def test_load_model_gives_the_keras_model_with_preprocessing(searched: dict[str, Path]) -> None:
    import automl

    model = automl.load_model("models:/s@champion", home=str(searched["home"]))
    assert {"numeric", "cat_0"} <= {t.name for t in model.inputs}


def test_trials_and_best_commands(searched: dict[str, Path]) -> None:
    home = str(searched["home"])
    table = invoke("trials", "--study", "s", "--home", home, "--json")
    rows = json.loads(table.stdout)
    assert [r["number"] for r in rows] == list(range(TRIALS))
    assert all(r["state"] == "COMPLETE" and r["params"]["family"] == "mlp" for r in rows)
    best = json.loads(invoke("best", "--study", "s", "--home", home, "--json").stdout)
    assert best["value"] == max(r["value"] for r in rows)
    assert best["model_uri"] == "models:/s/1" and best["champion_uri"] == "models:/s@champion"
    text = invoke("trials", "--study", "s", "--home", home)
    assert "COMPLETE" in text.stdout and "val_accuracy" in text.stdout


def test_predict_writes_rows_with_predictions(searched: dict[str, Path]) -> None:
    out = searched["root"] / "pred.csv"
    result = invoke(
        "predict",
        "--model",
        "models:/s@champion",
        "--data",
        str(searched["data"]),
        "--output",
        str(out),
        "--home",
        str(searched["home"]),
    )
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    assert len(written) == 150 and set(written["prediction"]) <= {"yes", "no"}
    assert list(written.columns[:4]) == ["x1", "x2", "color", "y"]


def test_search_again_continues_the_study_with_the_same_parent(searched: dict[str, Path]) -> None:
    home = str(searched["home"])
    result = invoke(
        "search",
        "--data",
        str(searched["data"]),
        "--target",
        "y",
        "--trials",
        "1",
        "--epochs",
        "1",
        "--study",
        "s",
        "--home",
        home,
        "--quiet",
        "--json",
    )
    assert result.exit_code == 0, result.output
    c = client(searched["home"])
    experiment = c.get_experiment_by_name("s")
    runs = c.search_runs([experiment.experiment_id], max_results=100)
    assert sum(r.data.tags.get("automl.role") == "study" for r in runs) == 1
    assert sum(r.data.tags.get("automl.role") == "trial" for r in runs) == TRIALS + 1
    rows = json.loads(invoke("trials", "--study", "s", "--home", home, "--json").stdout)
    assert len(rows) == TRIALS + 1


def test_families_list_and_show() -> None:
    listed = json.loads(invoke("families", "--json").stdout)
    assert "mlp" in [row["name"] for row in listed]
    shown = json.loads(invoke("families", "show", "mlp", "--json").stdout)
    assert {"optimizer", "learning_rate", "loss"} <= {row["name"] for row in shown}
    assert "momentum" in invoke("families", "show", "mlp").stdout


def test_every_command_has_help() -> None:
    for command in ("search", "resume", "families", "trials", "best", "predict", "ui"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "--" in result.stdout, command
    for command in ("search", "trials", "best", "predict", "ui", "resume"):
        assert "--home" in invoke(command, "--help").stdout, command


# ---- bad input: one line on stderr naming the culprit, exit 2, nothing created --------------------------------


def _bad(home: Path, *args: str) -> str:
    result = runner.invoke(app, [*args, "--home", str(home)])
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    line = result.stderr.strip()
    assert line.startswith("automl: error: ") and "\n" not in line, line
    assert "Traceback" not in result.output
    return line


def _nothing_created(home: Path) -> None:
    assert not (home / "optuna.db").exists() and not (home / "mlflow.db").exists()


def test_missing_data_file(home: Path) -> None:
    assert "nope.csv" in _bad(home, "search", "--data", "nope.csv", "--target", "y")
    _nothing_created(home)


def test_missing_target_column(home: Path, table_csv: Path) -> None:
    line = _bad(home, "search", "--data", str(table_csv), "--target", "label")
    assert "'label'" in line and "table.csv" in line
    _nothing_created(home)


def test_malformed_yaml_space(home: Path, table_csv: Path, tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  units: {type: int, low: 8\n")
    assert "space.yaml" in _bad(home, "search", "--data", str(table_csv), "--target", "y", "--space", str(space))
    _nothing_created(home)


def test_invalid_space_param(home: Path, table_csv: Path, tmp_path: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  learning_rate: {type: float, low: 0.1, high: 0.001, log: true}\n")
    line = _bad(home, "search", "--data", str(table_csv), "--target", "y", "--space", str(space))
    assert "space.yaml" in line and "learning_rate" in line
    _nothing_created(home)


def test_unknown_family(home: Path, table_csv: Path) -> None:
    line = _bad(home, "search", "--data", str(table_csv), "--target", "y", "--family", "transformerx")
    assert "transformerx" in line and "mlp" in line
    _nothing_created(home)


def test_nan_target(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "nan.csv"
    pd.DataFrame({"a": range(20), "y": [1.0, None] * 10}).to_csv(data, index=False)
    line = _bad(home, "search", "--data", str(data), "--target", "y")
    assert "'y'" in line and "missing" in line
    _nothing_created(home)


def test_bad_pin(home: Path, table_csv: Path) -> None:
    assert "'unitz'" in _bad(home, "search", "--data", str(table_csv), "--target", "y", "--set", "unitz=3")
    _nothing_created(home)


def test_loss_metric_refused_while_loss_is_searched(home: Path, regression_csv: Path) -> None:
    line = _bad(home, "search", "--data", str(regression_csv), "--target", "target", "--metric", "loss")
    assert "loss" in line and "--set loss" in line
    _nothing_created(home)


@pytest.mark.parametrize(
    ("flag", "value", "fragment"),
    [
        ("--sampler", "nosuch", "--sampler 'nosuch' is not one of"),
        ("--pruner", "nosuch", "--pruner 'nosuch' is not one of"),
        ("--trials", "0", "--trials must be at least 1"),
    ],
)
def test_bad_search_settings_are_refused_before_any_store(
    home: Path, table_csv: Path, flag: str, value: str, fragment: str
) -> None:
    assert fragment in _bad(home, "search", "--data", str(table_csv), "--target", "y", flag, value)
    _nothing_created(home)


def test_a_usage_mistake_is_one_line_from_the_console_script(tmp_path: Path) -> None:
    import subprocess
    import sys

    for args, fragment in [
        (["search", "--seed", "abc", "--data", "x"], "search: Invalid value for '--seed'"),
        (["search", "--bogus"], "search: No such option: --bogus"),
        (["nosuch"], "No such command 'nosuch'"),
    ]:
        done = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("automl: error: ") and fragment in lines[0], done.stderr


def test_unknown_metric(home: Path, table_csv: Path) -> None:
    assert "'r2'" in _bad(home, "search", "--data", str(table_csv), "--target", "y", "--metric", "r2")


def test_unreachable_tracking_server_fails_fast(home: Path, table_csv: Path) -> None:
    start = time.monotonic()
    line = _bad(home, "search", "--data", str(table_csv), "--target", "y", "--tracking-uri", "http://127.0.0.1:9")
    assert "http://127.0.0.1:9" in line and "unreachable" in line
    assert time.monotonic() - start < 10  # checked before the data is loaded and the space linted
    assert not (home / "optuna.db").exists()


def test_unreadable_storage(home: Path, table_csv: Path) -> None:
    line = _bad(home, "search", "--data", str(table_csv), "--target", "y", "--storage", "nosuchdb://x")
    assert "nosuchdb://x" in line


def test_unknown_study(home: Path, searched: dict[str, Path]) -> None:
    result = runner.invoke(app, ["trials", "--study", "nope", "--home", str(searched["home"])])
    assert result.exit_code == 2 and "'nope'" in result.stderr and "s" in result.stderr
    result = runner.invoke(app, ["best", "--study", "s", "--home", str(home)])
    assert result.exit_code == 2 and "no Optuna storage" in result.stderr


def test_predict_bad_inputs_keep_the_store(searched: dict[str, Path], tmp_path: Path) -> None:
    home = searched["home"]
    before = len(json.loads(invoke("trials", "--study", "s", "--home", str(home), "--json").stdout))
    out = str(tmp_path / "o.csv")
    assert "missing.csv" in _bad(
        home, "predict", "--model", "models:/s@champion", "--data", "missing.csv", "--output", out
    )
    partial = tmp_path / "partial.csv"
    pd.read_csv(searched["data"]).drop(columns=["color"]).to_csv(partial, index=False)
    assert "color" in _bad(home, "predict", "--model", "models:/s@champion", "--data", str(partial), "--output", out)
    assert "nomodel" in _bad(
        home, "predict", "--model", "models:/nomodel@champion", "--data", str(partial), "--output", out
    )
    bad_number = tmp_path / "bad_number.csv"
    frame = pd.read_csv(searched["data"]).head(5)
    frame["x1"] = frame["x1"].astype(object)
    frame.loc[3, "x1"] = "twelve"
    frame.to_csv(bad_number, index=False)
    line = _bad(home, "predict", "--model", "models:/s@champion", "--data", str(bad_number), "--output", out)
    assert "'x1'" in line and "row 4" in line and "'twelve'" in line
    header_only = tmp_path / "header_only.csv"
    frame.iloc[:0].to_csv(header_only, index=False)
    assert "no rows" in _bad(
        home, "predict", "--model", "models:/s@champion", "--data", str(header_only), "--output", out
    )
    assert not Path(out).exists()
    after = len(json.loads(invoke("trials", "--study", "s", "--home", str(home), "--json").stdout))
    assert after == before


def test_listing_commands_leave_stderr_empty() -> None:
    import subprocess
    import sys

    for args in (["families"], ["families", "show", "cnn"]):
        done = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert "cnn" in done.stdout


def test_a_failed_registration_closes_the_parent_run_and_best_says_so(
    home: Path, table_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from automl.errors import StoreError
    from automl.tracking import Tracker

    def disk_full(*args: object, **kwargs: object) -> None:
        raise StoreError("model upload failed: [Errno 28] No space left on device")

    monkeypatch.setattr(Tracker, "log_best_model", disk_full)
    args = ["search", "--data", str(table_csv), "--target", "y", "--trials", "1", "--epochs", "1", "--study", "f"]
    result = runner.invoke(app, [*args, "--home", str(home)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]  # after the progress bar's lines
    assert last.startswith("automl: error: ") and "No space left on device" in last
    c = client(home)
    parent = c.search_runs([c.get_experiment_by_name("f").experiment_id], "tags.`automl.role` = 'study'")[0]
    assert parent.info.status == "FAILED"
    assert "No space left on device" in parent.data.tags["automl.stopped"]
    shown = json.loads(invoke("best", "--study", "f", "--home", str(home), "--json").stdout)
    assert shown["model_uri"] is None and shown["champion_uri"] is None
    assert "No space left on device" in shown["registration_error"]
    assert "none registered" in invoke("best", "--study", "f", "--home", str(home)).stdout


@pytest.mark.parametrize("where", ["under_a_file", "read_only_fs"])
def test_an_unwritable_home_is_one_line_naming_it(tmp_path: Path, table_csv: Path, where: str) -> None:
    if where == "under_a_file":
        blocker = tmp_path / "file"
        blocker.write_text("")
        home = blocker / "store"
    else:  # sysfs refuses new folders even to root
        home = Path("/sys/automl-test-home")
    line = _bad(home, "search", "--data", str(table_csv), "--target", "y")
    assert str(home) in line and "cannot be" in line
    assert not home.exists()


def test_progress_shows_the_running_trials_epochs(home: Path, table_csv: Path) -> None:
    args = ["search", "--data", str(table_csv), "--target", "y", "--trials", "1", "--epochs", "2", "--no-report"]
    verbose = runner.invoke(app, [*args, "--study", "v", "--home", str(home), "--quiet", "-v"])
    assert verbose.exit_code == 0, verbose.output
    assert "running #0 epoch 1/2 val" in verbose.stderr and "running #0 epoch 2/2 val" in verbose.stderr
    quiet = runner.invoke(app, [*args, "--study", "q", "--home", str(home), "--quiet"])
    assert quiet.exit_code == 0 and "epoch" not in quiet.stderr
    bar = runner.invoke(app, [*args, "--study", "b", "--home", str(home)], terminal_width=200)
    assert bar.exit_code == 0 and "running #0 epoch 2/2 val" in bar.stderr


@pytest.mark.parametrize("name", ["mlflow.db", "optuna.db"])
def test_a_corrupt_store_is_one_line_naming_the_file(home: Path, table_csv: Path, name: str) -> None:
    (home / name).write_bytes(b"this is not a sqlite database" * 100)
    start = time.monotonic()
    line = _bad(home, "search", "--data", str(table_csv), "--target", "y")
    assert str(home / name) in line and "cannot be read" in line
    assert time.monotonic() - start < 30
    assert (home / name).read_bytes().startswith(b"this is not")  # left as it was


def test_best_on_a_store_whose_registry_is_corrupt_prints_no_model(searched: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    home = tmp_path / "copy"
    shutil.copytree(searched["home"], home)
    (home / "mlflow.db").write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (home / f"mlflow.db{suffix}").unlink(missing_ok=True)
    line = _bad(home, "best", "--study", "s")
    assert "mlflow.db" in line and "cannot be read" in line


def test_a_continued_search_whose_best_is_unchanged_registers_no_second_version(home: Path, table_csv: Path) -> None:
    args = ["search", "--data", str(table_csv), "--target", "y", "--study", "once", "--home", str(home), "--quiet"]
    assert runner.invoke(app, [*args, "--trials", "2", "--epochs", "3", "--no-report"]).exit_code == 0
    worse = ["--set", "units=16", "--set", "learning_rate=0.0001", "--set", "optimizer=adam", "--set", "n_layers=1"]
    again = runner.invoke(app, [*args, "--trials", "1", "--epochs", "1", "--no-report", *worse])
    assert again.exit_code == 0, again.output
    study = optuna.load_study(study_name="once", storage=f"sqlite:///{home / 'optuna.db'}")
    assert study.best_trial.number in (0, 1)  # the new, deliberately weak trial did not win
    versions = client(home).search_model_versions("name = 'once'")
    assert [int(v.version) for v in versions] == [1]
    assert "already registered" in again.stderr


def test_a_moved_home_reads_and_writes_its_own_artifacts(tmp_path: Path, table_csv: Path) -> None:
    import shutil

    first, moved = tmp_path / "first", tmp_path / "moved"
    args = ["search", "--data", str(table_csv), "--target", "y", "--study", "mv", "--epochs", "1", "--no-report"]
    assert runner.invoke(app, [*args, "--trials", "1", "--home", str(first), "--quiet"]).exit_code == 0
    shutil.copytree(first, moved)
    shutil.rmtree(first)
    out = tmp_path / "predicted.csv"
    predicted = invoke(
        "predict",
        "--model",
        "models:/mv@champion",
        "--data",
        str(table_csv),
        "--output",
        str(out),
        "--home",
        str(moved),
    )
    assert predicted.exit_code == 0 and len(pd.read_csv(out)) == len(pd.read_csv(table_csv))
    again = runner.invoke(app, [*args, "--trials", "1", "--home", str(moved), "--quiet"])
    assert again.exit_code == 0, again.output
    assert not first.exists(), sorted(str(p) for p in first.rglob("*"))  # nothing written to the original's folder
    c = client(moved)
    experiment = c.get_experiment_by_name("mv")
    assert experiment.artifact_location == (moved / "artifacts").resolve().as_uri()
    assert all(str(moved.resolve()) in r.info.artifact_uri for r in c.search_runs([experiment.experiment_id]))


def test_a_bug_escapes_the_console_script_with_its_own_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only usage mistakes become one line: anything else is a bug and keeps its own exception."""
    import cli.main

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli.main, "app", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main.main()


def test_a_read_only_store_can_still_be_inspected(tmp_path: Path, table_csv: Path) -> None:
    """trials, best and report --output on a finished store that cannot be written (made immutable here)."""
    import shutil
    import subprocess
    import sys

    home = tmp_path / "store"
    args = ["search", "--data", str(table_csv), "--target", "y", "--study", "ro", "--trials", "1", "--epochs", "1"]
    # another process writes the store, as in life: this one must not hold it open when it turns read-only
    searched = subprocess.run(
        [sys.executable, "-m", "cli.main", *args, "--home", str(home), "--quiet", "--no-report"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert searched.returncode == 0, searched.stderr[-2000:]
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "-R", "+i", str(home)], capture_output=True).returncode != 0:
        pytest.skip("this file system cannot make the store read-only (chattr +i)")
    try:
        assert not os.access(home, os.W_OK) or subprocess.run(["touch", str(home / "probe")]).returncode != 0
        listed = invoke("trials", "--study", "ro", "--home", str(home), "--json")
        assert [row["state"] for row in json.loads(listed.stdout)] == ["COMPLETE"]
        best = json.loads(invoke("best", "--study", "ro", "--home", str(home), "--json").stdout)
        assert best["model_uri"] == "models:/ro/1"
        out = tmp_path / "report"
        report = invoke("report", "--study", "ro", "--home", str(home), "--output", str(out))
        assert report.exit_code == 0 and (out / "optimization_history.png").is_file()
    finally:
        subprocess.run([chattr, "-R", "-i", str(home)], check=True)


def test_the_console_script_checks_the_tracking_server_before_importing_keras(tmp_path: Path) -> None:
    import subprocess
    import sys

    probe = (
        "import runpy, sys\n"
        "sys.argv = ['automl'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('cli.main', run_name='__main__')\n"
        "finally:\n    print('keras imported:', 'keras' in sys.modules, file=sys.stderr)\n"
    )
    args = ["search", "--data", "demo:wine", "--tracking-uri", "http://127.0.0.1:9", "--home", str(tmp_path / "h")]
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
    assert time.monotonic() - start < 10
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and lines[0].startswith("automl: error: ") and "unreachable" in lines[0]
    assert lines[-1] == "keras imported: False"
    assert not (tmp_path / "h").exists()
