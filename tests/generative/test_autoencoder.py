"""The autoencoder family: its penalties, its variants, anomaly data, and the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from automl import families
from automl.data import DataSpec, load_dataset
from automl.errors import DataError
from automl.families._generative import build_encoder, finite_difference_jacobian_norm
from automl.families.autoencoder import build_model, reconstructor
from automl.training import TrainingData, resolve_metric, train
from cli.main import app

BASE = {
    "n_layers": 1,
    "units": 16,
    "code_size": 3,
    "activation": "tanh",
    "recon_loss": "mse",
    "batch_size": 32,
    "optimizer": "adam",
    "learning_rate": 3e-3,
}


def jacobian_estimate(encoder: keras.Model, x: np.ndarray, sigma: float = 1e-2) -> float:
    probe = np.random.default_rng(0).normal(size=x.shape).astype("float32")
    code = encoder(x, training=False)
    return float(finite_difference_jacobian_norm(code, encoder(x + sigma * probe, training=False), sigma))


def test_contractive_penalty_matches_the_jacobian_and_grows_with_the_encoders_sensitivity() -> None:
    spec = DataSpec(kind="table", task="reconstruction", input_shape=(6,))
    x = np.random.default_rng(1).normal(size=(4000, 6)).astype("float32")
    linear = build_encoder({"n_layers": 0}, spec, 3)  # one Dense: J = W, so ||J||_F^2 = sum(W^2)
    kernel = np.asarray(linear.get_layer("code").kernel)
    assert jacobian_estimate(linear, x) == pytest.approx(float(np.sum(kernel**2)), rel=0.1)

    deep = build_encoder({**BASE, "n_layers": 2}, spec, 3)
    before = jacobian_estimate(deep, x[:256])
    for layer in deep.layers:
        if isinstance(layer, keras.layers.Dense):
            layer.kernel.assign(layer.kernel * 3.0)
    assert jacobian_estimate(deep, x[:256]) > 4 * before


def test_penalties_are_added_only_in_training_and_follow_their_weight() -> None:
    spec = DataSpec(kind="table", task="reconstruction", input_shape=(6,))
    x = np.random.default_rng(2).normal(size=(32, 6)).astype("float32")
    losses = {}
    for weight in (1e-3, 1e-1):
        keras.utils.set_random_seed(0)
        model = build_model({**BASE, "variant": "contractive", "contractive_weight": weight}, spec)
        model(x, training=True)
        losses[weight] = [float(v) for v in model.losses]
        model(x, training=False)
        assert len(model.losses) == 1  # reconstruction only: no penalty at inference
    assert len(losses[1e-3]) == 2
    # same seed, same weights: the reconstruction part is equal, the penalty scales 100x
    assert sum(losses[1e-1]) - sum(losses[1e-3]) == pytest.approx(99 * min(losses[1e-3]), rel=0.05)


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("table", {"variant": "denoising", "noise": "gaussian", "noise_level": 0.2, "recon_loss": "huber"}),
        (
            "table",
            {
                "variant": "sparse",
                "sparsity": "kl",
                "sparsity_weight": 1e-2,
                "sparsity_target": 0.05,
                "recon_loss": "bce",
            },
        ),
        (
            "image",
            {
                "variant": "denoising",
                "noise": "masking",
                "noise_level": 0.3,
                "architecture": "conv",
                "filters": 8,
                "n_layers": 2,
                "recon_loss": "bce",
            },
        ),
        ("image", {"variant": "sparse", "sparsity": "l1", "sparsity_weight": 1e-3, "architecture": "dense"}),
        ("image", {"variant": "contractive", "contractive_weight": 1e-3, "architecture": "conv", "filters": 8}),
    ],
)
def test_variants_train_and_the_objective_is_clean_input_mse_whatever_the_loss(
    kind: str, params: dict[str, Any]
) -> None:
    rng = np.random.default_rng(3)
    shape = (6,) if kind == "table" else (7, 7, 1)
    x = rng.uniform(size=(96, *shape)).astype("float32")
    spec = DataSpec(kind=kind, task="reconstruction", input_shape=shape)
    data = TrainingData(x[:64], np.zeros(64, "int32"), x[64:], np.zeros(32, "int32"))
    family = families.get("autoencoder")
    dataset: Any = type("D", (), {"spec": spec, "task": "reconstruction"})()
    model, log = train(family, {**BASE, **params}, dataset, data, 2, "val_recon_mse", "minimize")
    assert len(log.history) == 2 and log.best_value is not None
    clean = np.asarray(reconstructor(model).predict(x[64:], verbose=0))
    assert clean.shape == x[64:].shape
    assert log.history[log.best_epoch]["val_recon_mse"] == pytest.approx(
        float(np.mean((clean - x[64:]) ** 2)), rel=1e-4
    )


def test_anomaly_data_trains_on_normal_rows_and_ranks_by_auc(anomaly_csv: Path) -> None:
    data = load_dataset(str(anomaly_csv), target="label", task="anomaly", family="autoencoder", seed=0)
    assert data.task == "anomaly" and data.metadata["normal_label"] == "ok"
    assert set(np.unique(data.y_train)) == {0} and set(np.unique(data.y_val)) == {0, 1}
    assert resolve_metric(data.task, None) == ("roc_auc", "maximize")
    flipped = load_dataset(str(anomaly_csv), target="label", task="anomaly", normal_label="odd", seed=0)
    assert flipped.metadata["normal_label"] == "odd" and len(flipped.y_train) < len(data.y_train)
    with pytest.raises(DataError, match="--normal-label 'nope'"):
        load_dataset(str(anomaly_csv), target="label", task="anomaly", normal_label="nope", seed=0)


def test_a_table_without_target_is_a_reconstruction_task_for_the_autoencoder(plain_csv: Path) -> None:
    data = load_dataset(str(plain_csv), family="autoencoder", seed=0)
    assert data.task == "reconstruction" and data.spec.input_shape == (5,)
    assert resolve_metric(data.task, None) == ("recon_mse", "minimize")
    with pytest.raises(DataError, match="--target is required"):
        load_dataset(str(plain_csv), family="mlp", seed=0)  # the other families still need one


runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_cli_anomaly_search_registers_a_scorer_with_flags(anomaly_csv: Path, tmp_path: Path) -> None:
    home = tmp_path / "store"
    result = invoke(
        "search",
        "--family",
        "autoencoder",
        "--data",
        str(anomaly_csv),
        "--target",
        "label",
        "--task",
        "anomaly",
        "--trials",
        "2",
        "--epochs",
        "3",
        "--study",
        "ae",
        "--home",
        str(home),
        "--quiet",
        "--json",
        "--no-report",
        "--set",
        "variant=plain",
        "--set",
        "architecture=dense",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["metric"] == "roc_auc" and summary["direction"] == "maximize"
    assert 0.0 <= summary["test_metrics"]["test_roc_auc"] <= 1.0
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{home / 'mlflow.db'}")
    rows = pd.read_csv(anomaly_csv)
    out = mlflow.pyfunc.load_model("models:/ae@champion").predict(rows.drop(columns=["label"]))
    assert list(out.columns) == ["score", "anomaly"] and len(out) == len(rows)
    assert out["score"].groupby(rows["label"]).mean()["odd"] > out["score"].groupby(rows["label"]).mean()["ok"]
    client = mlflow.tracking.MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    trial = client.search_runs(
        [client.get_experiment_by_name("ae").experiment_id], filter_string="tags.`automl.role` = 'trial'"
    )[0]
    assert [m.step for m in client.get_metric_history(trial.info.run_id, "val_roc_auc")] == [0, 1, 2]


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_cli_reconstruction_registers_the_encoder(plain_csv: Path, tmp_path: Path, isolation: str) -> None:
    """In process or in a child process, the trial's run gets its reconstructions picture."""
    home = tmp_path / "store"
    result = invoke(
        "search",
        "--family",
        "autoencoder",
        "--data",
        str(plain_csv),
        "--trials",
        "1",
        "--epochs",
        "2",
        "--study",
        "rec",
        "--home",
        str(home),
        "--quiet",
        "--json",
        "--no-report",
        "--set",
        "code_size=3",
        "--isolation",
        isolation,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["metric"] == "recon_mse" and summary["test_metrics"]["test_recon_mse"] > 0
    client = mlflow.tracking.MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_run(summary["parent_run_id"]).info.experiment_id
    (trial_run,) = client.search_runs([experiment], filter_string="tags.`automl.role` = 'trial'")
    pictures = [a.path for a in client.list_artifacts(trial_run.info.run_id, "reconstructions")]
    assert pictures == ["reconstructions/val.png"]  # the trial's validation rows beside their reconstructions
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{home / 'mlflow.db'}")
    codes = mlflow.pyfunc.load_model("models:/rec@champion").predict(pd.read_csv(plain_csv).head(4))
    assert list(codes.columns) == ["code_0", "code_1", "code_2"] and np.isfinite(codes.to_numpy()).all()
    out = tmp_path / "codes.csv"
    done = invoke(
        "encode", "--model", "models:/rec@champion", "--data", str(plain_csv), "--output", str(out), "--home", str(home)
    )
    assert done.exit_code == 0, done.output
    written = pd.read_csv(out)
    assert list(written.columns) == ["code_0", "code_1", "code_2"] and len(written) == 120
    np.testing.assert_allclose(written.head(4).to_numpy(), codes.to_numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--task", "dreaming"), "--task 'dreaming' is not one of"),
        (("--target", "label", "--task", "anomaly", "--normal-label", "nope"), "--normal-label 'nope'"),
    ],
)
def test_cli_bad_generative_inputs_exit_2(
    anomaly_csv: Path, tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    result = runner.invoke(
        app,
        [
            "search",
            "--family",
            "autoencoder",
            "--data",
            str(anomaly_csv),
            *args,
            "--home",
            str(tmp_path / "s"),
            "--quiet",
        ],
    )
    assert result.exit_code == 2
    assert fragment in result.output and len(result.output.strip().splitlines()) == 1


def test_unlabeled_anomaly_data_scores_with_a_percentile_threshold(plain_csv: Path) -> None:
    data = load_dataset(str(plain_csv), task="anomaly", family="autoencoder", seed=0)
    assert data.task == "reconstruction" and data.metadata["task"] == "anomaly"  # nothing to rank: recon error
    family = families.get("autoencoder")
    model, _ = train(
        family, {**BASE, "variant": "plain"}, data, TrainingData.from_dataset(data), 1, "val_recon_mse", "minimize"
    )
    shipped = family.export(model, data)
    assert shipped is not None
    scores = np.asarray(shipped.network.predict(data.x_val, verbose=0)).reshape(-1)
    assert shipped.metadata["threshold"] == pytest.approx(float(np.percentile(scores, 99.0)))
    errors = np.mean((np.asarray(reconstructor(model).predict(data.x_val, verbose=0)) - data.x_val) ** 2, axis=1)
    np.testing.assert_allclose(scores, errors, rtol=1e-4, atol=1e-6)  # the score is the reconstruction MSE
