"""A real subprocess end to end: `automl search`, then `automl predict`, then pyfunc in a fresh process."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.reliability.conftest import clean_env


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("automl")
    command = [exe, *args] if exe else [sys.executable, "-m", "cli.main", *args]
    env = {**clean_env(), "AUTOML_HOME": str(cwd / "runs")}
    env.pop("AUTOML_ISOLATION", None)  # the user's default path: trials in the pool's processes
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_search_predict_and_pyfunc_in_fresh_processes(tmp_path: Path, table_csv: Path) -> None:
    searched = run(
        "search",
        "--data",
        str(table_csv),
        "--target",
        "y",
        "--trials",
        "3",
        "--epochs",
        "2",
        "--study",
        "e2e",
        "--quiet",
        "--json",
        cwd=tmp_path,
    )
    assert searched.returncode == 0, searched.stderr
    result = json.loads(searched.stdout)
    assert result["best_trial"] is not None and result["model_uri"] == "models:/e2e/1"
    assert result["states"]["COMPLETE"] + result["states"]["PRUNED"] == 3
    assert "trial 2" in searched.stderr  # --quiet: plain log lines
    # neither the search process nor its trial processes print the backend's start-up lines (TF's C++ logging)
    assert "absl::InitializeLog" not in searched.stderr and "oneDNN" not in searched.stderr, searched.stderr

    out = tmp_path / "pred.parquet"
    predicted = run(
        "predict", "--model", "models:/e2e@champion", "--data", str(table_csv), "--output", str(out), cwd=tmp_path
    )
    assert predicted.returncode == 0, predicted.stderr
    assert set(pd.read_parquet(out)["prediction"]) <= {"yes", "no"}

    rows = tmp_path / "rows.csv"
    pd.read_csv(table_csv).drop(columns=["y"]).head(7).to_csv(rows, index=False)
    script = (
        "import sys, mlflow, pandas as pd\n"
        f"mlflow.set_tracking_uri('sqlite:///{tmp_path / 'runs' / 'mlflow.db'}')\n"
        "model = mlflow.pyfunc.load_model('models:/e2e@champion')\n"
        f"print(list(model.predict(pd.read_csv('{rows}'))))\n"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean_env(), "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert fresh.returncode == 0, fresh.stderr
    labels = ast.literal_eval(fresh.stdout.strip().splitlines()[-1])
    assert len(labels) == 7 and set(labels) <= {"yes", "no"}


def test_bad_input_in_a_real_process_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run("search", "--data", "missing.csv", "--target", "y", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "automl: error: missing.csv: data file not found"
