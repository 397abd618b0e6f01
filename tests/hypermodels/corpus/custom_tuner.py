"""KerasTuner's "custom training loop" guide, re-created in our own words as a ``HyperModel``.

Source: https://keras.io/guides/keras_tuner/custom_tuner/, keras-team/keras-io guides/keras_tuner/custom_tuner.py.
The guide puts its loop in ``Tuner.run_trial``; automl tunes hypermodels, not tuners, so the same loop lives in
``HyperModel.fit``, which KerasTuner documents for custom training.
Traits: a functional conv net with ``hp.Int`` defaults (``conv_layers`` default 3, ``filters_{i}`` default 8),
per-layer pooling choices, ``BatchNormalization``, an optimizer chosen by name at compile time; in ``fit``: params
drawn at fit time (``batch_size``, a log-scale ``learning_rate``), a ``tf.data`` pipeline, a ``GradientTape`` loop
with its own ``Adam``, the model's regularization losses, pixels divided by 255 inside the train step, two epochs
whatever the tuner asks, and the per-epoch hook (here the callbacks) given ``{"loss": ...}`` only. The oracle's
objective was the training ``loss`` (min): ``fit`` returns the last epoch's loss, searched with ``--metric loss``.
Input: MNIST's (28, 28, 1) becomes ``demo:digits-images`` (8, 8, 1); three 2x2 poolings still fit.
"""

import keras
import keras_tuner
import tensorflow as tf


def build_model(hp):
    inputs = keras.Input(shape=(8, 8, 1))
    x = inputs
    for i in range(hp.Int("conv_layers", 1, 3, default=3)):
        x = keras.layers.Conv2D(
            filters=hp.Int("filters_" + str(i), 4, 32, step=4, default=8),
            kernel_size=hp.Int("kernel_size_" + str(i), 3, 5),
            activation="relu",
            padding="same",
        )(x)
        pooling = hp.Choice("pooling" + str(i), ["max", "avg"])
        # Keras 3 has no default pool_size for AveragePooling2D; (2, 2) is the tf.keras default the guide relied on
        pooled = keras.layers.MaxPooling2D() if pooling == "max" else keras.layers.AveragePooling2D(pool_size=(2, 2))
        x = pooled(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    if hp.Choice("global_pooling", ["max", "avg"]) == "max":
        x = keras.layers.GlobalMaxPooling2D()(x)
    else:
        x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(hp.Choice("optimizer", ["adam", "sgd"]), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class CustomLoopHyperModel(keras_tuner.HyperModel):
    def build(self, hp):
        return build_model(hp)

    def fit(self, hp, model, x, y, callbacks=None, **kwargs):
        batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(hp.Int("batch_size", 32, 128, step=32, default=64))
        rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
        optimizer = keras.optimizers.Adam(rate)
        mean_loss = keras.metrics.Mean()
        loss_fn = keras.losses.SparseCategoricalCrossentropy()
        hooks = keras.callbacks.CallbackList(callbacks, model=model)

        def train_step(images, labels):
            images = tf.cast(images, "float32") / 255.0
            with tf.GradientTape() as tape:
                loss = loss_fn(labels, model(images))
                if model.losses:
                    loss += tf.math.add_n(model.losses)
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
            mean_loss.update_state(loss)

        for epoch in range(2):
            hooks.on_epoch_begin(epoch, logs={})
            for images, labels in batches:
                train_step(images, labels)
            epoch_loss = float(mean_loss.result())
            hooks.on_epoch_end(epoch, logs={"loss": epoch_loss})
            mean_loss.reset_state()
        return epoch_loss


hypermodel = CustomLoopHyperModel()
