"""Variational autoencoder: Gaussian latent, dense or conv; the objective is the validation negative ELBO.

The likelihood is fixed by the data, never searched: Bernoulli for images (pixels in [0, 1]), unit-variance
Gaussian for tables (constants dropped). ``beta`` weights the KL term in training only; the objective is the true
ELBO (beta = 1), so trials with different betas compare. Reconstruction and KL parts are logged per epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
from keras import ops

from automl.data import Dataset, DataSpec
from automl.families import Export, Family
from automl.families._generative import (
    SUPERVISED_TASKS,
    ReconstructionPenalty,
    build_decoder,
    build_encoder,
    row_errors,
)
from automl.families._heads import output_head
from automl.families.autoencoder import compile_model
from automl.training import TrainingData, fit_model

LOGVAR_RANGE = (-10.0, 10.0)
EVAL_SEED = 0  # the validation ELBO uses one fixed draw of the latent noise, so epochs and trials compare


@keras.saving.register_keras_serializable(package="automl")
class GaussianLatent(keras.layers.Layer):
    """``[mean | log-variance]`` -> a sample (the mean at inference); adds ``beta`` x KL(q(z|x) || N(0, I))."""

    def __init__(self, latent_size: int, beta: float = 1.0, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.latent_size = int(latent_size)
        self.beta = float(beta)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, stats: Any, training: bool | None = None) -> Any:
        mean = stats[:, : self.latent_size]
        logvar = ops.clip(stats[:, self.latent_size :], *LOGVAR_RANGE)
        if not training:
            return mean
        kl = -0.5 * ops.sum(1.0 + logvar - ops.square(mean) - ops.exp(logvar), axis=-1)
        self.add_loss(self.beta * ops.mean(kl))
        noise = keras.random.normal(ops.shape(mean), seed=self.seed_generator, dtype=mean.dtype)
        return mean + ops.exp(0.5 * logvar) * noise

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "latent_size": self.latent_size, "beta": self.beta, "seed": self.seed}


def likelihood(spec: DataSpec) -> tuple[str, float]:
    """``(loss, weight)`` so that weight x the elementwise-mean loss is the negative log-likelihood of a row."""
    size = float(np.prod(spec.input_shape))
    return ("bce", size) if spec.kind == "image" else ("mse", 0.5 * size)


def build_model(params: Mapping[str, Any], spec: DataSpec) -> keras.Model:
    """Input -> encoder -> [mean | log-variance] -> sample -> decoder; penalties carry the negative ELBO."""
    latent = int(params.get("latent_size", 8))
    inputs = keras.Input(shape=spec.input_shape, name="features")
    encoder = build_encoder(params, spec, 2 * latent)
    decoder = build_decoder(params, spec, latent)
    z = GaussianLatent(latent, float(params.get("beta", 1.0)), name="latent")(encoder(inputs))
    reconstruction = decoder(z)
    loss, weight = likelihood(spec)
    passthrough = reconstruction
    if spec.task in SUPERVISED_TASKS:
        code_in = keras.Input(shape=(latent,), name="code")
        passthrough = keras.Model(code_in, output_head(code_in, spec), name="head")(z)
    outputs = ReconstructionPenalty(loss, False, weight, name="reconstruction_loss")(
        [inputs, reconstruction, passthrough]
    )
    model = keras.Model(inputs, outputs, name="vae")
    model.automl_task = spec.task
    model.automl_kind = spec.kind
    return model


def elbo_parts(model: keras.Model, x: np.ndarray, kind: str) -> dict[str, np.ndarray]:
    """Per-row reconstruction NLL, KL and reconstruction MSE (of the mean code), with one fixed noise draw."""
    encoder, decoder = model.get_layer("encoder"), model.get_layer("decoder")
    latent = int(model.get_layer("latent").latent_size)
    stats = np.asarray(encoder.predict(x, batch_size=1024, verbose=0), dtype="float64")
    mean, logvar = stats[:, :latent], np.clip(stats[:, latent:], *LOGVAR_RANGE)
    noise = np.random.default_rng(EVAL_SEED).normal(size=mean.shape)
    z = (mean + np.exp(0.5 * logvar) * noise).astype("float32")
    sampled = np.asarray(decoder.predict(z, batch_size=1024, verbose=0), dtype="float64").reshape(len(x), -1)
    flat = np.asarray(x, dtype="float64").reshape(len(x), -1)
    if kind == "image":
        p = np.clip(sampled, 1e-7, 1 - 1e-7)
        nll = -np.sum(flat * np.log(p) + (1 - flat) * np.log(1 - p), axis=1)
    else:
        nll = 0.5 * np.sum(np.square(flat - sampled), axis=1)
    kl = -0.5 * np.sum(1.0 + logvar - np.square(mean) - np.exp(logvar), axis=1)
    at_mean = np.asarray(decoder.predict(mean.astype("float32"), batch_size=1024, verbose=0))
    return {"recon": nll, "kl": kl, "neg_elbo": nll + kl, "recon_mse": row_errors(np.asarray(x), at_mean)}


class ElboMetrics(keras.callbacks.Callback):
    """Adds ``val_recon``, ``val_kl``, ``val_neg_elbo`` and ``val_recon_mse`` to the epoch logs."""

    def __init__(self, x_val: np.ndarray, kind: str) -> None:
        super().__init__()
        self.x_val = np.asarray(x_val)
        self.kind = kind

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        for name, values in elbo_parts(self.model, self.x_val, self.kind).items():
            logs[f"val_{name}"] = float(np.mean(values))


def fit(model: keras.Model, params: Mapping[str, Any], data: TrainingData, epochs: int, callbacks: list[Any]) -> None:
    """Supervised tasks: the default loop. Otherwise maximize the ELBO, logging its parts on validation."""
    if getattr(model, "automl_task", "density") in SUPERVISED_TASKS:
        fit_model(model, params, data, epochs, callbacks)
        return
    model.fit(
        data.x_train,
        epochs=epochs,
        batch_size=int(params.get("batch_size", 32)),
        validation_data=(data.x_val,),
        verbose=0,
        callbacks=[ElboMetrics(data.x_val, getattr(model, "automl_kind", "table")), *callbacks],
    )


def export(model: keras.Model, dataset: Dataset) -> Export | None:
    """Supervised: encoder mean + head. Otherwise the encoder's mean code per row (columns z_0, z_1, ...)."""
    latent = int(model.get_layer("latent").latent_size)
    inputs = keras.Input(shape=dataset.spec.input_shape, name="features")
    stats = model.get_layer("encoder")(inputs)
    # built-in layers only (the registry model loads anywhere): a fixed Dense picks the mean half
    select = keras.layers.Dense(latent, use_bias=False, trainable=False, name="mean")
    mean_code = select(stats)
    select.set_weights([np.vstack([np.eye(latent), np.zeros((latent, latent))]).astype("float32")])
    if dataset.task in SUPERVISED_TASKS:
        return Export(keras.Model(inputs, model.get_layer("head")(mean_code), name="vae_head"))
    parts = elbo_parts(model, dataset.x_test, dataset.spec.kind)
    test = {f"test_{k}": float(np.mean(v)) for k, v in parts.items()}
    return Export(
        keras.Model(inputs, mean_code, name="vae_encoder"), metadata={"output_prefix": "z_", "test_metrics": test}
    )


def evaluate(exported: Any, dataset: Dataset, metadata: Mapping[str, Any]) -> dict[str, float] | None:
    """Test negative ELBO and its parts (computed at export on the test split)."""
    if dataset.task in SUPERVISED_TASKS:
        return None
    return dict(metadata.get("test_metrics", {}))


FAMILY = Family(
    name="vae",
    build=build_model,
    data_kinds=frozenset({"table", "image"}),
    description="Variational autoencoder (Gaussian latent, beta, dense or conv): density, codes.",
    fit=fit,
    metrics={"density": {"neg_elbo": "minimize", "recon": "minimize", "recon_mse": "minimize"}},
    default_task="density",
    compile=compile_model,
    evaluate=evaluate,
    export=export,
)
