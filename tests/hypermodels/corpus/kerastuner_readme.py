"""KerasTuner's README quick start, re-created in our own words.

Source: https://github.com/keras-team/keras-tuner/blob/master/README.md ("Quick introduction").
Traits: a build function; ``hp.Choice`` over ints; a Sequential with no ``Input`` (built on its first call);
``compile(loss="mse")`` with no optimizer (Keras's default, rmsprop); a regression head ending in ``relu``.
Input: the README feeds any numeric table; here ``demo:diabetes`` (10 columns, regression).
"""

import keras


def build_model(hp):
    model = keras.Sequential()
    model.add(keras.layers.Dense(hp.Choice("units", [8, 16, 32]), activation="relu"))
    model.add(keras.layers.Dense(1, activation="relu"))
    model.compile(loss="mse")
    return model
