"""AutoRec collaborative filtering: the rating data, the masked loss, and a search that beats the global mean."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from automl.data import load_dataset
from automl.data.ratings import pairs_to_indices
from automl.errors import DataError
from automl.families.autorec import MaskedReconstruction
from cli.main import app


def test_rating_data_holds_centered_training_ratings_and_held_out_pairs(tmp_path: Path) -> None:
    data = load_dataset("demo:ratings", family="autorec", seed=0)
    assert data.task == "rating"
    mask, matrix = data.y_train, data.x_train
    assert matrix.shape == (data.spec.extra["n_items"], data.spec.extra["n_users"]) == mask.shape
    assert int(mask.sum()) == data.description["splits"]["train"]
    assert abs(float(matrix[mask > 0].mean())) < 1e-4 and not matrix[mask == 0].any()
    assert len(data.x_val) == len(data.y_val) == data.description["splits"]["val"]
    unseen = pairs_to_indices(data.metadata, pd.DataFrame({"user": ["nobody"], "item": ["never"]}))
    assert unseen.tolist() == [[len(data.metadata["users"]), len(data.metadata["items"])]]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"user": [1, 2], "score": [3, 4]}).to_csv(bad, index=False)
    with pytest.raises(DataError, match="needs columns user, item, rating"):
        load_dataset(str(bad), task="rating")


def test_masked_loss_counts_observed_entries_only() -> None:
    layer = MaskedReconstruction()
    target = np.array([[1.0, 5.0, 0.0]], dtype="float32")
    output = np.array([[2.0, 5.0, 9.0]], dtype="float32")
    layer([target, output, np.array([[1.0, 1.0, 0.0]], dtype="float32")])
    assert float(layer.losses[0]) == pytest.approx(0.5)


def test_cli_autorec_beats_the_global_mean_and_predicts_pairs(tmp_path: Path) -> None:
    home = tmp_path / "store"
    result = CliRunner().invoke(
        app,
        [
            "search",
            "--family",
            "autorec",
            "--data",
            "demo:ratings",
            "--trials",
            "1",
            "--epochs",
            "15",
            "--study",
            "cf",
            "--home",
            str(home),
            "--quiet",
            "--json",
            "--no-report",
            "--set",
            "hidden=64",
            "--set",
            "activation=sigmoid",
            "--set",
            "optimizer=adam",
            "--set",
            "learning_rate=0.01",
            "--set",
            "l2=0.001",
            "--set",
            "dropout=0.0",
            "--set",
            "batch_size=16",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    metrics = summary["test_metrics"]
    assert summary["metric"] == "rmse" and metrics["test_rmse"] < 0.9 * metrics["test_rmse_global_mean"]
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{home / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/cf@champion")
    predicted = np.asarray(model.predict(pd.DataFrame({"user": ["u1", "nobody"], "item": ["i3", "i3"]})))
    assert predicted.shape == (2,) and ((predicted >= 1.0) & (predicted <= 5.0)).all()


def test_cli_autorec_on_a_table_that_holds_no_ratings_is_one_line_and_exit_2(tmp_path: Path) -> None:
    args = ["search", "--family", "autorec", "--data", "demo:wine", "--home", str(tmp_path / "store")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("automl: error: demo:wine: the 'rating' task needs"), lines
    assert "--task classification" in lines[0]
    assert not (tmp_path / "store" / "optuna.db").exists()  # refused before any study was made
