"""The getting-started guide's ``HyperRegressor`` whose ``fit`` returns the objective, in our own words.

Source: https://keras.io/guides/keras_tuner/getting_started/ ("Specify the tuning objective", the example that
evaluates the model itself and returns a single float), keras-team/keras-io guides/keras_tuner/getting_started.py.
Traits: ``fit(hp, model, x, y, validation_data, **kwargs)`` takes the validation data out of ``kwargs``, trains with
``model.fit(x, y, **kwargs)`` (no validation metrics in the epoch logs), predicts on the validation split and
returns the mean absolute error as a plain number (KerasTuner minimizes it); ``Dense(units=1)`` with no
activation; ``loss="mean_squared_error"``. Input: random (100, 10) arrays become ``demo:diabetes`` (10 columns).
"""

import keras
import keras_tuner
import numpy as np
from keras import layers


class HyperRegressor(keras_tuner.HyperModel):
    def build(self, hp):
        model = keras.Sequential(
            [layers.Dense(units=hp.Int("units", 32, 128, 32), activation="relu"), layers.Dense(units=1)]
        )
        model.compile(optimizer="adam", loss="mean_squared_error")
        return model

    def fit(self, hp, model, x, y, validation_data, **kwargs):
        model.fit(x, y, **kwargs)
        x_val, y_val = validation_data
        predicted = model.predict(x_val)
        return np.mean(np.abs(predicted - y_val))


hypermodel = HyperRegressor()
