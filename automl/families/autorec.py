"""AutoRec (item-based): an autoencoder over each item's vector of user ratings, trained on observed entries only.

The objective is the RMSE on held-out (user, item) ratings; the registered model takes (user, item) rows and
returns a rating (an unseen user or item falls back to the item's or the global mean). On a labeled table the
family trains a plain autoencoder with a head, like ``autoencoder``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from automl.data import Dataset, DataSpec, adapt_input, predict_inputs
from automl.families import Export, Family
from automl.families import autoencoder as plain
from automl.families._generative import SUPERVISED_TASKS
from automl.training import TrainingData, get_optimizer


@keras.saving.register_keras_serializable(package="automl")
class MaskedReconstruction(keras.layers.Layer):
    """Adds the MSE over observed entries only (``mask`` = 1); passes the reconstruction on."""

    def call(self, inputs: Sequence[Any]) -> Any:
        target, reconstruction, mask = inputs
        squared = ops.square(target - reconstruction) * mask
        self.add_loss(ops.sum(squared) / ops.maximum(ops.sum(mask), 1.0))
        return reconstruction


def build_model(params: Mapping[str, Any], spec: DataSpec) -> keras.Model:
    """[ratings, mask] -> dropout -> Dense(hidden) -> Dense(users): one item's ratings by every user."""
    if spec.task in SUPERVISED_TASKS or spec.kind != "ratings":
        return plain.build_model({**params, "variant": "plain"}, spec)
    regularizer = keras.regularizers.L2(float(params.get("l2", 1e-3)))
    ratings = keras.Input(shape=spec.input_shape, name="ratings")
    mask = keras.Input(shape=spec.input_shape, name="mask")
    x = ratings
    if float(params.get("dropout", 0.0)) > 0:
        x = keras.layers.Dropout(float(params["dropout"]), name="dropout")(x)
    hidden = keras.layers.Dense(
        int(params.get("hidden", 128)),
        activation=params.get("activation", "sigmoid"),
        kernel_regularizer=regularizer,
        name="encoder",
    )(x)
    out = keras.layers.Dense(spec.input_shape[0], kernel_regularizer=regularizer, name="decoder")(hidden)
    return keras.Model([ratings, mask], MaskedReconstruction(name="masked_mse")([ratings, out, mask]), name="autorec")


def predicted_matrix(model: keras.Model, data: Any) -> np.ndarray:
    """Centered predictions for every (item, user) from the training ratings."""
    return np.asarray(model.predict([data.x_train, data.y_train], batch_size=1024, verbose=0))


def pair_rmse(
    matrix: np.ndarray, pairs: np.ndarray, ratings: np.ndarray, mean: float, bounds: tuple[float, float]
) -> float:
    predicted = np.clip(matrix[pairs[:, 1], pairs[:, 0]] + mean, *bounds)
    return float(np.sqrt(np.mean(np.square(predicted - ratings))))


class RatingMetrics(keras.callbacks.Callback):
    """Adds ``val_rmse`` on held-out ratings (clipped to the rating range) to the epoch logs."""

    def __init__(self, data: TrainingData, mean: float, bounds: tuple[float, float]) -> None:
        super().__init__()
        self.data, self.mean, self.bounds = data, mean, bounds

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            matrix = predicted_matrix(self.model, self.data)
            logs["val_rmse"] = pair_rmse(matrix, self.data.x_val, self.data.y_val, self.mean, self.bounds)


def fit(model: keras.Model, params: Mapping[str, Any], data: TrainingData, epochs: int, callbacks: list[Any]) -> None:
    """Items are the examples; only observed training ratings count in the loss."""
    if model.name != "autorec":
        plain.fit(model, params, data, epochs, callbacks)
        return
    # the loader centers training and validation ratings on the training mean: clip to the observed range
    observed = data.y_train > 0
    bounds = (float(data.x_train[observed].min()), float(data.x_train[observed].max()))
    model.fit(
        [data.x_train, data.y_train],
        epochs=epochs,
        batch_size=int(params.get("batch_size", 32)),
        verbose=0,
        callbacks=[RatingMetrics(data, 0.0, bounds), *callbacks],
    )


def compile_model(model: keras.Model, params: Mapping[str, Any], spec: DataSpec) -> keras.Model:
    if model.name != "autorec":
        return plain.compile_model(model, params, spec)
    model.compile(optimizer=get_optimizer(params))
    return model


def export(model: keras.Model, dataset: Dataset) -> Export | None:
    """A (user, item) -> rating network: a lookup of the predicted matrix, with mean fallbacks for unseen ids."""
    if model.name != "autorec":
        return plain.export(model, dataset)
    meta = dataset.metadata
    mean, bounds = float(meta["mean"]), (float(meta["min"]), float(meta["max"]))
    matrix = np.clip(predicted_matrix(model, dataset) + mean, *bounds)
    observed = dataset.y_train > 0
    counts = np.maximum(observed.sum(axis=1), 1)
    item_means = np.where(observed.any(axis=1), (dataset.x_train * observed).sum(axis=1) / counts + mean, mean)
    table = np.full((matrix.shape[0] + 1, matrix.shape[1] + 1), mean, dtype="float32")
    table[:-1, :-1], table[:-1, -1] = matrix, item_means
    pairs = keras.Input(shape=(2,), dtype="int32", name="pairs")
    user = keras.layers.CategoryEncoding(table.shape[1], output_mode="one_hot", name="user")(pairs[:, :1])
    rows = keras.layers.Embedding(table.shape[0], table.shape[1], trainable=False, name="predicted")(pairs[:, 1])
    rating = keras.layers.Dot(axes=1, name="rating")([rows, user])
    network = keras.Model(pairs, rating, name="autorec_pairs")
    network.get_layer("predicted").set_weights([table])
    return Export(network, standalone=True)


def evaluate(exported: Any, dataset: Dataset, metadata: Mapping[str, Any]) -> dict[str, float] | None:
    """Test RMSE of the registered model, next to the global-mean baseline."""
    if dataset.task != "rating":
        return plain.evaluate(exported, dataset, metadata)
    predicted = predict_inputs(exported, adapt_input(dict(metadata), dataset.raw_test)).reshape(-1)
    truth = dataset.y_test
    return {
        "test_rmse": float(np.sqrt(np.mean(np.square(predicted - truth)))),
        "test_rmse_global_mean": float(np.sqrt(np.mean(np.square(float(metadata["mean"]) - truth)))),
    }


FAMILY = Family(
    name="autorec",
    build=build_model,
    data_kinds=frozenset({"ratings", "table"}),
    description="AutoRec collaborative filtering: an autoencoder over items' user ratings; RMSE on held-out ratings.",
    fit=fit,
    metrics={"rating": {"rmse": "minimize"}},
    default_task="rating",
    compile=compile_model,
    evaluate=evaluate,
    export=export,
)
