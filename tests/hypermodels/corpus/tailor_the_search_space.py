"""The build function of KerasTuner's "Tailor the search space" guide, re-created in our own words.

Source: https://keras.io/guides/keras_tuner/tailor_the_search_space/,
keras-team/keras-io guides/keras_tuner/tailor_the_search_space.py.
Traits: ``hp.Int`` with an explicit ``default``; ``hp.Boolean("dropout")``; ``hp.Choice("learning_rate", ...)``
over floats fed to ``Adam``; ``sparse_categorical_crossentropy``. Kept as in the guide: the hidden ``Dense`` has no
activation and the line meant to add the output layer is a bare ``model.add`` (a no-op), so the model ends in a
``Dense(units)`` of 32 to 128 outputs instead of one per class. Input: random 28x28x1 arrays with 10 classes
become ``demo:digits-images`` (8, 8, 1).
"""

import keras
from keras import layers


def build_model(hp):
    model = keras.Sequential()
    model.add(layers.Flatten())
    model.add(layers.Dense(units=hp.Int("units", min_value=32, max_value=128, step=32, default=64)))
    if hp.Boolean("dropout"):
        model.add(layers.Dropout(rate=0.25))
    model.add  # noqa: B018  (the guide's dangling statement: no output layer is added)
    optimizer = keras.optimizers.Adam(learning_rate=hp.Choice("learning_rate", values=[1e-2, 1e-3, 1e-4]))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
