"""Each family's starting configuration, trained for 2 epochs on small shipped data, clears a real bar."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import optuna
import pytest

from automl import families
from automl.data import Dataset, load_dataset
from automl.families._quality import feature_space, sample_score
from automl.spaces import load_default_space
from automl.training import TrainingData, resolve_metric, train

EPOCHS = 2


def train_start(family_name: str, source: str, **options: Any) -> tuple[keras.Model, Dataset, float]:
    """Train the space's first applicable starting configuration; returns the model, the data and the best val."""
    dataset = load_dataset(source, seed=0, family=family_name, **options)
    family = families.get(family_name)
    space = load_default_space(family_name)
    points = space.start_points(dataset.task, dataset.spec.kind, n_train=len(dataset.y_train))
    assert points, f"{family_name} has no starting configuration for {dataset.task} {dataset.spec.kind} data"
    # the start fills every param it names; the rest come from a seeded sampler, as in a new study
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(points[0])
    params = space.suggest(study.ask(), dataset.task, kind=dataset.spec.kind, n_train=len(dataset.y_train))
    assert {k: params[k] for k in points[0] if k in params} == {k: v for k, v in points[0].items() if k in params}
    metric, direction = resolve_metric(dataset.task, None, family)
    data = TrainingData.from_dataset(dataset)
    keras.utils.set_random_seed(0)
    model, log = train(family, {"family": family_name, **params}, dataset, data, EPOCHS, f"val_{metric}", direction)
    assert log.best_value is not None
    return model, dataset, float(log.best_value)


def test_accuracy(model: keras.Model, dataset: Dataset) -> float:
    return float((np.asarray(model.predict(dataset.x_test, verbose=0)).argmax(-1) == dataset.y_test).mean())


test_accuracy.__test__ = False  # type: ignore[attr-defined]


def majority(dataset: Dataset) -> float:
    return float(np.mean(dataset.y_test == np.bincount(dataset.y_train).argmax()))


@pytest.mark.parametrize("family_name", ["cnn", "resnet"])
def test_image_start_reaches_085_on_8x8_digits(family_name: str) -> None:
    model, dataset, _ = train_start(family_name, "demo:digits-images")
    assert test_accuracy(model, dataset) >= 0.85


def test_mlp_start_reaches_090_on_the_digits_table() -> None:
    model, dataset, _ = train_start("mlp", "demo:digits")
    assert test_accuracy(model, dataset) >= 0.90


def test_rnn_start_beats_the_seasonal_naive_and_last_value_forecasts() -> None:
    model, dataset, _ = train_start("rnn", "demo:series-seasonal", window=48, horizon=1)
    mean, std = dataset.y_scale  # type: ignore[misc]
    forecast = np.asarray(model.predict(dataset.x_test, verbose=0)) * std + mean
    rmse = float(np.sqrt(np.mean((forecast - dataset.y_test) ** 2)))
    target = dataset.spec.extra["target_index"]
    raw, y = np.asarray(dataset.raw_test), dataset.y_test[:, 0]
    seasonal = float(np.sqrt(np.mean((raw[:, -24, target] - y) ** 2)))  # the value one day (24 steps) back
    last = float(np.sqrt(np.mean((raw[:, -1, target] - y) ** 2)))
    assert rmse < seasonal
    assert rmse < last


@pytest.mark.parametrize(("source", "margin"), [("demo:text-sentiment", 0.1), ("demo:sequence-waves", 0.2)])
def test_rnn_start_beats_the_majority_class(source: str, margin: float) -> None:
    model, dataset, _ = train_start("rnn", source)
    assert test_accuracy(model, dataset) >= majority(dataset) + margin


@pytest.mark.parametrize(("family_name", "metric_share"), [("autoencoder", 0.5), ("vae", 0.9)])
def test_reconstruction_start_beats_the_mean_image(family_name: str, metric_share: float) -> None:
    model, dataset, best = train_start(family_name, "demo:digits-images")
    x_train = np.asarray(dataset.x_train, dtype="float32")
    x_val = np.asarray(dataset.x_val, dtype="float32")
    mean_mse = float(np.mean((x_val - x_train.mean(axis=0)) ** 2))
    recon_mse = best if family_name == "autoencoder" else float(model.history.history["val_recon_mse"][-1])
    assert recon_mse < metric_share * mean_mse


def test_vae_start_beats_pixels_that_ignore_the_code() -> None:
    """Its validation negative ELBO is below that of independent Bernoulli pixels at the training mean (KL 0)."""
    _, dataset, best_neg_elbo = train_start("vae", "demo:digits-images")
    x_val = np.asarray(dataset.x_val, dtype="float64").reshape(len(dataset.x_val), -1)
    mean = np.asarray(dataset.x_train, dtype="float64").reshape(len(dataset.x_train), -1).mean(axis=0)
    p = np.clip(mean, 1e-7, 1 - 1e-7)
    baseline = float(np.mean(-(x_val * np.log(p) + (1 - x_val) * np.log(1 - p)).sum(axis=1)))
    assert best_neg_elbo < baseline - 0.5


def test_gan_start_samples_are_closer_to_the_data_than_noise() -> None:
    _, dataset, best_fid = train_start("gan", "demo:digits-images")
    features = feature_space(np.asarray(dataset.x_train), dataset.y_train)
    x_val = np.asarray(dataset.x_val, dtype="float32")
    noise = np.random.default_rng(0).uniform(size=x_val.shape).astype("float32")
    assert best_fid < sample_score(features, noise, x_val)


def test_autorec_start_beats_the_global_mean_rating() -> None:
    _, dataset, best_rmse = train_start("autorec", "demo:ratings")
    train_ratings, val_ratings = np.asarray(dataset.y_train, dtype="float32"), np.asarray(dataset.y_val)
    observed = train_ratings[train_ratings > 0] if train_ratings.ndim > 1 else train_ratings
    baseline = float(np.sqrt(np.mean((val_ratings - observed.mean()) ** 2)))
    assert best_rmse < baseline
