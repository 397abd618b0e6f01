"""The JAX backend: a smoke search end to end in a subprocess with KERAS_BACKEND=jax."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from automl.record import read_trial


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
        [
            sys.executable,
            "-m",
            "cli.main",
            "search",
            "--data",
            "demo:wine",
            "--trials",
            "2",
            "--epochs",
            "2",
            "--study",
            "jax",
            "--quiet",
            "--json",
            "--no-report",
        ],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=600,
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
    predicted = subprocess.run(
        [sys.executable, "-c", script], env=_env(home), capture_output=True, text=True, timeout=300
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    labels = predicted.stdout.strip().splitlines()[-1]
    assert labels.startswith("[") and "class_" in labels


@pytest.mark.parametrize("isolation", ["process", "none"])
def test_mixed_precision_and_determinism_reach_every_trial(tmp_path: Path, isolation: str) -> None:
    """On the default path (lint on, a child process per trial) and in process: read off the trained models."""
    import optuna

    home = tmp_path / "store"
    env = {**_env(home), "KERAS_BACKEND": "tensorflow", "AUTOML_ISOLATION": isolation}
    args = ["search", "--data", "demo:wine", "--trials", "2", "--epochs", "1", "--study", "mp"]
    search = subprocess.run(
        [sys.executable, "-m", "cli.main", *args, "--mixed-precision", "--deterministic", "--quiet", "--no-report"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert search.returncode == 0, search.stderr[-3000:]
    trials = optuna.load_study(study_name="mp", storage=f"sqlite:///{home / 'optuna.db'}").get_trials()
    assert len(trials) == 2
    for trial in trials:
        assert "mixed_float16" in read_trial(trial).dtype_policies, read_trial(trial).dtype_policies
        assert read_trial(trial).deterministic_ops is True
    import automl

    model = automl.load_model("models:/mp@champion", home=str(home))
    dense = [layer for layer in model.layers[-1].layers if layer.name.startswith("dense_")]
    assert dense and all(layer.dtype_policy.name == "mixed_float16" for layer in dense)
    assert model.layers[-1].get_layer("output").dtype_policy.name == "float32"


def test_gpu_workers_share_memory_and_round_robin() -> None:
    from automl.workers import gpu_env, split

    assert [gpu_env(i, 2, 1)["CUDA_VISIBLE_DEVICES"] for i in range(4)] == ["0", "1", "0", "1"]
    shared = gpu_env(3, 1, 4)
    assert shared["CUDA_VISIBLE_DEVICES"] == "0" and shared["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert float(shared["XLA_PYTHON_CLIENT_MEM_FRACTION"]) * 4 <= 0.9
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in gpu_env(0, 1, 1)
    assert split(20, 4) == [5, 5, 5, 5] and split(7, 3) == [3, 2, 2]
