"""Autoencoders (plain, denoising, sparse, contractive), dense or convolutional, for reconstruction and anomalies.

The objective never depends on the searched loss: the validation reconstruction MSE of clean inputs in the encoded
input space (``recon_mse``), or for anomaly detection with labels the validation ROC AUC of the per-row error.
Given a labeled task (classification, regression) the family trains a head on the code, the reconstruction loss
acting as a regularizer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from automl.data import Dataset, DataSpec, adapt_input, predict_inputs
from automl.families import Export, Family
from automl.families._generative import (
    SUPERVISED_TASKS,
    ActivityPenalty,
    ContractivePenalty,
    JacobianProbe,
    MaskingNoise,
    ReconstructionPenalty,
    best_f1_threshold,
    build_decoder,
    build_encoder,
    f1_at,
    roc_auc,
    row_errors,
)
from automl.families._heads import output_head
from automl.families._quality import image_grid
from automl.training import TrainingData, fit_model, get_optimizer, log_trial_image

JACOBIAN_SIGMA = 0.01  # finite-difference step of the contractive penalty, in encoded input units
UNLABELED_PERCENTILE = 99.0  # without labels, rows scoring above this percentile of validation rows are anomalies
AUXILIARY_WEIGHT = 1.0  # weight of the reconstruction loss next to a supervised head's loss


def build_model(params: Mapping[str, Any], spec: DataSpec) -> keras.Model:
    """Input -> [noise] -> encoder -> code [penalties] -> decoder; the output is the reconstruction (or a head)."""
    inputs = keras.Input(shape=spec.input_shape, name="features")
    variant = params.get("variant", "plain")
    x = inputs
    if variant == "denoising":
        level = float(params.get("noise_level", 0.1))
        if params.get("noise", "gaussian") == "masking":
            x = MaskingNoise(level, name="masking_noise")(x)
        else:
            x = keras.layers.GaussianNoise(level, name="gaussian_noise")(x)
    code_size = int(params.get("code_size", 8))
    sparse_kl = variant == "sparse" and params.get("sparsity", "l1") == "kl"
    encoder = build_encoder({**params, "code_activation": "sigmoid" if sparse_kl else None}, spec, code_size)
    decoder = build_decoder(params, spec, code_size)
    code = encoder(x)
    if variant == "contractive":
        probed = encoder(JacobianProbe(JACOBIAN_SIGMA, name="jacobian_probe")(x))
        code = ContractivePenalty(float(params.get("contractive_weight", 1e-3)), JACOBIAN_SIGMA, name="contractive")(
            [code, probed]
        )
    if variant == "sparse":
        code = ActivityPenalty(
            "kl" if sparse_kl else "l1",
            float(params.get("sparsity_weight", 1e-3)),
            float(params.get("sparsity_target", 0.05)),
            name="sparsity",
        )(code)
    reconstruction = decoder(code)
    squash = spec.kind != "image"
    loss = str(params.get("recon_loss", "mse"))
    if spec.task in SUPERVISED_TASKS:
        code_in = keras.Input(shape=(code_size,), name="code")
        head = keras.Model(code_in, output_head(code_in, spec), name="head")
        outputs = ReconstructionPenalty(loss, squash, AUXILIARY_WEIGHT, name="reconstruction_loss")(
            [inputs, reconstruction, head(code)]
        )
    else:
        outputs = ReconstructionPenalty(loss, squash, name="reconstruction_loss")(
            [inputs, reconstruction, reconstruction]
        )
    model = keras.Model(inputs, outputs, name="autoencoder")
    model.automl_task = spec.task  # read by fit(): which validation metrics to log
    return model


def reconstructor(model: keras.Model) -> keras.Model:
    """Clean input -> reconstruction, with the trained encoder and decoder (no noise, no penalties)."""
    inputs = keras.Input(shape=model.inputs[0].shape[1:], name="features")
    return keras.Model(inputs, model.get_layer("decoder")(model.get_layer("encoder")(inputs)), name="reconstructor")


RECONSTRUCTION_SAMPLES = 8  # validation inputs shown beside their reconstructions on each trial's run


class ReconstructionMetrics(keras.callbacks.Callback):
    """Adds ``val_recon_mse`` (and ``val_roc_auc`` for anomalies) to the epoch logs, before the objective reads them."""

    def __init__(self, x_val: np.ndarray, y_val: np.ndarray, anomaly: bool, batch_size: int = 1024) -> None:
        super().__init__()
        self.x_val = np.asarray(x_val)
        self.y_val = np.asarray(y_val)
        self.anomaly = anomaly
        self.batch_size = batch_size
        self._net: keras.Model | None = None

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._net = reconstructor(self.model)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None or self._net is None:
            return
        errors = row_errors(
            self.x_val, np.asarray(self._net.predict(self.x_val, batch_size=self.batch_size, verbose=0))
        )
        logs["val_recon_mse"] = float(np.mean(errors))
        if self.anomaly:
            logs["val_roc_auc"] = roc_auc(self.y_val, errors)

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._net is None or not len(self.x_val):
            return
        originals = self.x_val[:RECONSTRUCTION_SAMPLES]
        rebuilt = np.asarray(self._net.predict(originals, verbose=0))
        log_trial_image("reconstructions/val.png", reconstruction_picture(originals, rebuilt))


def reconstruction_picture(originals: np.ndarray, rebuilt: np.ndarray) -> np.ndarray:
    """Originals over their reconstructions: an image grid for images, a heat map (rows x features) for tables."""
    if originals.ndim == 4:
        lo, hi = float(min(originals.min(), rebuilt.min())), float(max(originals.max(), rebuilt.max()))
        scale = (hi - lo) or 1.0
        return image_grid((np.concatenate([originals, rebuilt]) - lo) / scale, columns=len(originals))
    flat = np.concatenate([originals.reshape(len(originals), -1), rebuilt.reshape(len(rebuilt), -1)])
    lo, hi = float(flat.min()), float(flat.max())
    picture = (flat - lo) / ((hi - lo) or 1.0)
    return np.kron(picture, np.ones((8, 8)))[..., None].astype("float32")  # 8x8 pixels per value


def fit(model: keras.Model, params: Mapping[str, Any], data: TrainingData, epochs: int, callbacks: list[Any]) -> None:
    """Supervised tasks: the default loop. Otherwise fit inputs to themselves, logging clean validation errors."""
    task = getattr(model, "automl_task", "reconstruction")
    if task in SUPERVISED_TASKS:
        fit_model(model, params, data, epochs, callbacks)
        return
    labeled = task == "anomaly"
    model.fit(
        data.x_train,
        epochs=epochs,
        batch_size=int(params.get("batch_size", 32)),
        validation_data=(data.x_val,),
        verbose=0,
        callbacks=[ReconstructionMetrics(data.x_val, data.y_val, labeled), *callbacks],
    )


def compile_model(model: keras.Model, params: Mapping[str, Any], spec: DataSpec) -> keras.Model:
    """Supervised tasks compile as usual; the others train on the losses the layers add."""
    from automl.training import compile_model as default_compile

    if spec.task in SUPERVISED_TASKS:
        return default_compile(model, params, spec.task)
    model.compile(optimizer=get_optimizer(params))
    return model


def scorer(model: keras.Model) -> keras.Model:
    """Encoded input -> its reconstruction MSE (built-in layers only: a fixed averaging Dense)."""
    inputs = keras.Input(shape=model.inputs[0].shape[1:], name="features")
    reconstruction = model.get_layer("decoder")(model.get_layer("encoder")(inputs))
    diff = keras.layers.Subtract(name="residual")([inputs, reconstruction])
    squared = keras.layers.Multiply(name="squared")([diff, diff])
    if len(inputs.shape) > 2:
        squared = keras.layers.Flatten(name="flatten")(squared)
    width = int(np.prod(inputs.shape[1:]))
    average = keras.layers.Dense(
        1, use_bias=False, trainable=False, kernel_initializer=keras.initializers.Constant(1.0 / width), name="score"
    )
    return keras.Model(inputs, average(squared), name="scorer")


def export(model: keras.Model, dataset: Dataset) -> Export | None:
    """Supervised: encoder + head. Anomalies: a scorer with a threshold. Reconstruction: the encoder (codes)."""
    inputs = keras.Input(shape=dataset.spec.input_shape, name="features")
    encoder = model.get_layer("encoder")
    if dataset.task in SUPERVISED_TASKS:
        return Export(keras.Model(inputs, model.get_layer("head")(encoder(inputs)), name="autoencoder_head"))
    if dataset.spec.extra.get("anomaly"):
        network = scorer(model)
        scores = np.asarray(network.predict(dataset.x_val, verbose=0)).reshape(-1)
        if dataset.spec.extra.get("labeled"):
            threshold, val_f1 = best_f1_threshold(dataset.y_val, scores)
            return Export(network, metadata={"threshold": threshold, "val_f1": val_f1})
        return Export(network, metadata={"threshold": float(np.percentile(scores, UNLABELED_PERCENTILE))})
    errors = row_errors(dataset.x_test, np.asarray(reconstructor(model).predict(dataset.x_test, verbose=0)))
    return Export(
        keras.Model(inputs, encoder(inputs), name="encoder"),
        metadata={"output_prefix": "code_", "test_metrics": {"test_recon_mse": float(np.mean(errors))}},
    )


def evaluate(exported: Any, dataset: Dataset, metadata: Mapping[str, Any]) -> dict[str, float] | None:
    """Test metrics of the registered model: ROC AUC and F1 of the flags for anomalies; reconstruction MSE."""
    if dataset.task in SUPERVISED_TASKS:
        return None
    metrics = dict(metadata.get("test_metrics", {}))
    if metadata.get("threshold") is not None:
        scores = predict_inputs(exported, adapt_input(dict(metadata), dataset.raw_test)).reshape(-1)
        metrics["test_recon_mse"] = float(np.mean(scores))
        if dataset.spec.extra.get("labeled"):
            metrics["test_roc_auc"] = roc_auc(dataset.y_test, scores)
            metrics["test_f1"] = f1_at(dataset.y_test, scores > float(metadata["threshold"]))
    return metrics


FAMILY = Family(
    name="autoencoder",
    build=build_model,
    data_kinds=frozenset({"table", "image"}),
    description="Autoencoder (plain, denoising, sparse, contractive; dense or conv): reconstruction, anomalies.",
    fit=fit,
    metrics={
        "reconstruction": {"recon_mse": "minimize"},
        "anomaly": {"roc_auc": "maximize", "recon_mse": "minimize"},
    },
    default_task="reconstruction",
    compile=compile_model,
    evaluate=evaluate,
    export=export,
)
