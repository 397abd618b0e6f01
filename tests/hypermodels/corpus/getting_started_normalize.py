"""The getting-started guide's ``MyHyperModel`` that tunes preprocessing in ``fit``, re-created in our own words.

Source: https://keras.io/guides/keras_tuner/getting_started/ ("Tune data preprocessing"),
keras-team/keras-io guides/keras_tuner/getting_started.py.
Traits: a ``keras_tuner.HyperModel`` subclass overriding ``build`` and ``fit``; ``fit(hp, model, x, y, **kwargs)``
draws ``hp.Boolean("normalize")`` and, when true, calls a fresh (never adapted) ``Normalization`` layer on ``x``
before ``model.fit``; it also draws ``hp.Boolean("shuffle")`` and forwards ``**kwargs`` (callbacks, epochs);
``categorical_crossentropy``. Input: MNIST becomes ``demo:digits-images`` (8, 8, 1).
"""

import keras
import keras_tuner
from keras import layers


class MyHyperModel(keras_tuner.HyperModel):
    def build(self, hp):
        model = keras.Sequential()
        model.add(layers.Flatten())
        model.add(layers.Dense(units=hp.Int("units", min_value=32, max_value=512, step=32), activation="relu"))
        model.add(layers.Dense(10, activation="softmax"))
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, hp, model, x, y, **kwargs):
        if hp.Boolean("normalize"):
            x = layers.Normalization()(x)
        return model.fit(x, y, shuffle=hp.Boolean("shuffle"), **kwargs)


hypermodel = MyHyperModel()
