"""The VAE family: the KL term and beta, the ELBO parts per epoch, and a search end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from automl import families
from automl.data import DataSpec
from automl.families.vae import GaussianLatent, elbo_parts
from automl.training import TrainingData, resolve_metric, train
from cli.main import app

PARAMS = {
    "n_layers": 1,
    "units": 16,
    "latent_size": 2,
    "beta": 1.0,
    "activation": "relu",
    "batch_size": 32,
    "optimizer": "adam",
    "learning_rate": 3e-3,
}


def test_kl_term_is_beta_times_the_closed_form_and_only_in_training() -> None:
    stats = np.array([[1.0, -2.0, 0.5, 0.0]], dtype="float32")  # mean (1, -2), log-variance (0.5, 0)
    expected = -0.5 * ((1 + 0.5 - 1 - np.exp(0.5)) + (1 + 0 - 4 - 1))
    for beta in (1.0, 3.0):
        layer = GaussianLatent(2, beta)
        layer(stats, training=True)
        assert float(layer.losses[0]) == pytest.approx(beta * expected, rel=1e-5)
    layer = GaussianLatent(2, 1.0)
    np.testing.assert_allclose(np.asarray(layer(stats, training=False)), [[1.0, -2.0]])
    assert not layer.losses


@pytest.mark.parametrize(("kind", "architecture"), [("table", "dense"), ("image", "conv")])
def test_epoch_logs_hold_the_elbo_parts_and_the_objective_is_their_sum(kind: str, architecture: str) -> None:
    rng = np.random.default_rng(0)
    shape = (5,) if kind == "table" else (8, 8, 1)
    x = rng.uniform(size=(96, *shape)).astype("float32")
    spec = DataSpec(kind=kind, task="density", input_shape=shape)
    data = TrainingData(x[:64], np.zeros(64, "int32"), x[64:], np.zeros(32, "int32"))
    dataset: Any = type("D", (), {"spec": spec, "task": "density"})()
    assert resolve_metric("density", None) == ("neg_elbo", "minimize")
    params = {**PARAMS, "architecture": architecture, "filters": 8, "beta": 2.0}
    model, log = train(families.get("vae"), params, dataset, data, 2, "val_neg_elbo", "minimize")
    for row in log.history:
        assert {"val_recon", "val_kl", "val_neg_elbo", "val_recon_mse"} <= set(row)
        assert row["val_neg_elbo"] == pytest.approx(row["val_recon"] + row["val_kl"], rel=1e-6)
        assert row["val_kl"] >= 0
    again = elbo_parts(model, x[64:], kind)  # the fixed noise draw: the objective is reproducible
    assert float(np.mean(again["neg_elbo"])) == pytest.approx(log.best_value, rel=1e-4)


def test_cli_vae_search_logs_parts_per_epoch_and_registers_the_encoder(plain_csv: Path, tmp_path: Path) -> None:
    home = tmp_path / "store"
    result = CliRunner().invoke(
        app,
        [
            "search",
            "--family",
            "vae",
            "--data",
            str(plain_csv),
            "--trials",
            "1",
            "--epochs",
            "2",
            "--study",
            "v",
            "--home",
            str(home),
            "--quiet",
            "--json",
            "--no-report",
            "--set",
            "latent_size=2",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["metric"] == "neg_elbo" and summary["test_metrics"]["test_neg_elbo"] > 0
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(uri)
    run = client.search_runs(
        [client.get_experiment_by_name("v").experiment_id], filter_string="tags.`automl.role` = 'trial'"
    )[0]
    for name in ("val_recon", "val_kl", "val_neg_elbo"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [0, 1]
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    import pandas as pd

    codes = mlflow.pyfunc.load_model("models:/v@champion").predict(pd.read_csv(plain_csv).head(3))
    assert list(codes.columns) == ["z_0", "z_1"]
    keras.utils.clear_session()
