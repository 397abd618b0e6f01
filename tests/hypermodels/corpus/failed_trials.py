"""The build function of KerasTuner's "Handling failed trials" guide that raises ``FailedTrialError``.

Source: https://keras.io/guides/keras_tuner/failed_trials/ ("Mark a trial as failed"),
keras-team/keras-io guides/keras_tuner/failed_trials.py. Re-created in our own words.
Traits: two stepped ``hp.Int``; a Sequential whose first ``Dense`` takes ``input_shape=`` (no ``Input`` layer);
``compile(loss="mse")`` with no optimizer; ``model.count_params()`` checked inside ``build`` and
``keras_tuner.errors.FailedTrialError`` raised over 1200 parameters (3 of the 12 combinations), which must fail
that trial only. Input: random (100, 20) arrays become ``demo:diabetes``: ``input_shape=(10,)``.
"""

import keras
import keras_tuner
from keras import layers


def build_model(hp):
    units_1 = hp.Int("units_1", 10, 40, step=10)
    units_2 = hp.Int("units_2", 10, 30, step=10)
    model = keras.Sequential(
        [
            layers.Dense(units=units_1, input_shape=(10,)),
            layers.Dense(units=units_2),
            layers.Dense(units=1),
        ]
    )
    model.compile(loss="mse")
    size = model.count_params()
    if size > 1200:
        raise keras_tuner.errors.FailedTrialError(f"Model too large! It contains {size} params.")
    return model
