"""The JAX backend: a smoke search end to end in a subprocess with KERAS_BACKEND=jax."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _require_jax() -> None:
    if importlib.util.find_spec("jax") is None:
        if os.environ.get("CI"):
            pytest.fail("jax is not installed (the dev extra installs it)")
        pytest.skip("jax is not installed: pip install 'automl[jax]'")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "KERAS_BACKEND": "jax", "AUTOML_HOME": str(home), "JAX_PLATFORMS": "cpu"}


def test_search_and_predict_on_jax(tmp_path: Path) -> None:
    _require_jax()
    home = tmp_path / "store"
    search = subprocess.run(
        [sys.executable, "-m", "cli.main", "search", "--data", "demo:wine", "--trials", "2", "--epochs", "2",
         "--study", "jax", "--quiet", "--json", "--no-report"],
        env=_env(home), capture_output=True, text=True, timeout=600,
    )
    assert search.returncode == 0, search.stderr[-3000:]
    result = json.loads(search.stdout)
    assert result["states"]["COMPLETE"] + result["states"]["PRUNED"] == 2
    assert 0.0 <= result["test_metrics"]["test_accuracy"] <= 1.0
    script = (
        "import keras, mlflow, sklearn.datasets as d\n"
        "assert keras.backend.backend() == 'jax'\n"
        f"mlflow.set_tracking_uri('sqlite:///{home / 'mlflow.db'}')\n"
        "rows = d.load_wine(as_frame=True).frame.drop(columns=['target']).head(5)\n"
        "print(list(mlflow.pyfunc.load_model('models:/jax@champion').predict(rows)))\n"
    )
    predicted = subprocess.run([sys.executable, "-c", script], env=_env(home), capture_output=True, text=True,
                               timeout=300)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    labels = predicted.stdout.strip().splitlines()[-1]
    assert labels.startswith("[") and "class_" in labels
