"""The build function of KerasTuner's "Visualize the tuning process" guide, re-created in our own words.

Source: https://keras.io/guides/keras_tuner/visualize_tuning/,
keras-team/keras-io guides/keras_tuner/visualize_tuning.py.
Traits: model selection with plain ``if`` (no ``conditional_scope``): an MLP branch (``mlp_layers``, ``units_{i}``)
or a CNN branch (``cnn_layers``, ``filters_{i}``, unpadded 3x3 convolutions and 2x2 poolings, so three layers need
at least 22 pixels a side); ``hp.Boolean("dropout")``; a functional model with an explicit ``Input(28, 28, 1)``;
``sparse_categorical_crossentropy``. The guide's TensorBoard callback and ``validation_split`` are tuner-level.
Input: kept at (28, 28, 1): run on ``demo:digits-images`` with ``--image-size 28x28``.
"""

import keras
from keras import layers


def build_model(hp):
    inputs = keras.Input(shape=(28, 28, 1))
    x = inputs
    if hp.Choice("model_type", ["mlp", "cnn"]) == "mlp":
        x = layers.Flatten()(x)
        for i in range(hp.Int("mlp_layers", 1, 3)):
            x = layers.Dense(units=hp.Int(f"units_{i}", 32, 128, step=32), activation="relu")(x)
    else:
        for i in range(hp.Int("cnn_layers", 1, 3)):
            x = layers.Conv2D(hp.Int(f"filters_{i}", 32, 128, step=32), kernel_size=(3, 3), activation="relu")(x)
            x = layers.MaxPooling2D(pool_size=(2, 2))(x)
        x = layers.Flatten()(x)
    if hp.Boolean("dropout"):
        x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(units=10, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"], optimizer="adam")
    return model
