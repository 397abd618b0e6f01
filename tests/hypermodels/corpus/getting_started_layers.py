"""The getting-started guide's build function with a searched number of layers, re-created in our own words.

Source: https://keras.io/guides/keras_tuner/getting_started/ (the ``for i in range(hp.Int("num_layers", 1, 3))``
example), keras-team/keras-io guides/keras_tuner/getting_started.py.
Traits: define-by-run conditional params (``units_{i}`` exist only for ``i < num_layers``); one ``activation``
choice shared by every layer; ``hp.Boolean("dropout")``; a log-scale ``hp.Float("lr")`` fed to ``Adam``;
``categorical_crossentropy``. Input: MNIST becomes ``demo:digits-images`` (8, 8, 1); the code names no shape.
"""

import keras
from keras import layers


def build_model(hp):
    model = keras.Sequential()
    model.add(layers.Flatten())
    depth = hp.Int("num_layers", 1, 3)
    for index in range(depth):
        units = hp.Int(f"units_{index}", min_value=32, max_value=512, step=32)
        model.add(layers.Dense(units=units, activation=hp.Choice("activation", ["relu", "tanh"])))
    if hp.Boolean("dropout"):
        model.add(layers.Dropout(rate=0.25))
    model.add(layers.Dense(10, activation="softmax"))
    rate = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
