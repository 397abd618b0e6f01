"""The first model-building function of KerasTuner's getting-started guide, re-created in our own words.

Source: https://keras.io/guides/keras_tuner/getting_started/ ("Define the search space"),
keras-team/keras-io guides/keras_tuner/getting_started.py.
Traits: a build function; one ``hp.Int`` with a step; a Sequential that starts with ``Flatten`` and has no ``Input``;
``optimizer="adam"`` by name; ``categorical_crossentropy`` (one-hot labels) with ``metrics=["accuracy"]``.
Input: MNIST's 28x28 images become ``demo:digits-images`` (8, 8, 1); nothing in the code names the shape.
"""

import keras
from keras import layers


def build_model(hp):
    model = keras.Sequential()
    model.add(layers.Flatten())
    width = hp.Int("units", min_value=32, max_value=512, step=32)
    model.add(layers.Dense(units=width, activation="relu"))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model
