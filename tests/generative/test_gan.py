"""The GAN family: the sample-quality score ranks real > trained > untrained > noise; search, registry, sampling."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from typer.testing import CliRunner

from automl import families
from automl.data import load_dataset
from automl.families._quality import feature_space, frechet_distance, sample_score
from automl.families.gan import Pieces
from automl.training import TrainingData, train
from cli.main import app

PARAMS = {
    "architecture": "dense",
    "latent_size": 16,
    "g_layers": 2,
    "g_units": 128,
    "d_layers": 2,
    "d_units": 128,
    "g_learning_rate": 2e-4,
    "d_learning_rate": 2e-4,
    "beta1": 0.5,
    "label_smoothing": 0.1,
    "d_steps": 1,
    "conditional": False,
    "batch_size": 32,
}


def test_frechet_distance_is_zero_on_the_same_rows_and_the_squared_shift_of_the_mean() -> None:
    a = np.random.default_rng(0).normal(size=(500, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + np.array([3.0, 0.0, 4.0])) == pytest.approx(25.0, rel=1e-6)


def test_score_ranks_real_over_trained_over_untrained_over_noise() -> None:
    data = load_dataset("demo:digits-images", task="generation", seed=0)
    features = feature_space(data.x_train, data.y_train)
    assert feature_space(data.x_train, data.y_train) is features  # fitted once per data set
    family = families.get("gan")
    keras.utils.set_random_seed(0)
    untrained = Pieces.of(family.build(PARAMS, data.spec)).sample(len(data.x_val))
    model, log = train(family, PARAMS, data, TrainingData.from_dataset(data), 5, "val_fid", "minimize")
    assert {"d_loss", "g_loss", "val_fid"} <= set(log.history[0])
    trained = Pieces.of(model).sample(len(data.x_val))
    noise = np.random.default_rng(0).normal(size=data.x_val.shape).astype("float32")  # white noise, unit scale
    scores = [sample_score(features, x, data.x_val) for x in (data.x_test, trained, untrained, noise)]
    assert scores == sorted(scores), scores
    assert scores[1] == pytest.approx(log.best_value, rel=1e-6)  # the objective is this score at the best epoch


def summary_trial_run(client: MlflowClient, parent_run_id: str) -> str:
    experiment = client.get_run(parent_run_id).info.experiment_id
    runs = client.search_runs([experiment], filter_string="tags.`automl.role` = 'trial'")
    assert len(runs) == 1
    return str(runs[0].info.run_id)


def test_cli_conditional_gan_registers_the_generator_and_samples_a_grid(tmp_path: Path) -> None:
    home = tmp_path / "store"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "search",
            "--family",
            "gan",
            "--data",
            "demo:digits-images",
            "--trials",
            "1",
            "--epochs",
            "2",
            "--study",
            "g",
            "--home",
            str(home),
            "--quiet",
            "--json",
            "--no-report",
            "--set",
            "architecture=conv",
            "--set",
            "conditional=true",
            "--set",
            "g_filters=8",
            "--set",
            "d_filters=8",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["metric"] == "fid" and summary["test_metrics"]["test_fid"] > 0
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(uri)
    artifacts = [a.path for a in client.list_artifacts(summary["parent_run_id"], "samples")]
    assert artifacts == ["samples/final_grid.png"]
    trial_run = summary_trial_run(client, summary["parent_run_id"])
    grids = [a.path for a in client.list_artifacts(trial_run, "samples")]
    assert grids == ["samples/epoch_000.png", "samples/epoch_001.png"]  # every few epochs, and the last one
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    latent = int(summary["best_params"]["latent_size"])
    columns = [f"z_{i}" for i in range(latent)] + [f"label_{i}" for i in range(10)]
    rows = pd.DataFrame(np.c_[np.zeros((3, latent)), np.eye(10)[:3]], columns=columns)
    images = mlflow.pyfunc.load_model("models:/g@champion").predict(rows)
    assert np.asarray(images).shape == (3, 8, 8, 1)

    grid = tmp_path / "grid.png"
    done = runner.invoke(
        app,
        ["sample", "--model", "models:/g@champion", "-n", "16", "--output", str(grid), "--home", str(home)],
        catch_exceptions=False,
    )
    assert done.exit_code == 0, done.output
    with Image.open(grid) as image:
        assert image.size == (8 * 9 - 1, 2 * 9 - 1)
    bad = runner.invoke(
        app,
        [
            "sample",
            "--model",
            "models:/g@champion",
            "--label",
            "12",
            "--output",
            str(tmp_path / "x.png"),
            "--home",
            str(home),
        ],
    )
    assert bad.exit_code == 2 and "--label 12" in bad.output


def test_the_objective_is_the_chosen_familys_even_when_another_family_declares_the_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from automl.config import SearchConfig
    from automl.runner import prepare

    # as if a family earlier by name declared "generation" with an objective of its own
    monkeypatch.setattr(families, "task_metrics", lambda task: {"other_score": "maximize"})
    config = SearchConfig(
        data="demo:digits-images", family="gan", study="which", home=str(tmp_path), lint=False, isolation="none"
    )
    session = prepare(config)
    session.tracker.finish_study(session.parent_id, {}, {}, "FINISHED")
    assert (session.metric, session.direction) == ("fid", "minimize")
