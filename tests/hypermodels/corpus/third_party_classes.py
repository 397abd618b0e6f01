"""A third-party course note's ``MyHyperModel(classes)``, re-created in our own words.

Source: github.com/term1830/DS-Unit-4-Sprint-2-Neural-Networks, module3-Tune/Readme.md (a course's notes on the
KerasTuner 1.0 README of the time, ``from kerastuner import HyperModel``; today's package is ``keras_tuner``).
Traits: a ``HyperModel`` subclass whose ``__init__`` takes the number of classes and never calls
``super().__init__()`` (no ``name``/``tunable`` attributes); the target is a module-level instance; a Sequential with
no ``Input``; ``hp.Choice("learning_rate", values=[1e-2, 1e-3, 1e-4])`` fed to ``Adam``;
``sparse_categorical_crossentropy``. Input: a flat table, here ``demo:digits`` (64 columns, 10 classes).
"""

from keras import layers, optimizers
from keras import models as keras_models
from keras_tuner import HyperModel


class MyHyperModel(HyperModel):
    def __init__(self, classes):
        self.classes = classes

    def build(self, hp):
        model = keras_models.Sequential()
        model.add(layers.Dense(units=hp.Int("units", min_value=32, max_value=512, step=32), activation="relu"))
        model.add(layers.Dense(self.classes, activation="softmax"))
        rate = hp.Choice("learning_rate", values=[1e-2, 1e-3, 1e-4])
        model.compile(optimizer=optimizers.Adam(rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model


hypermodel = MyHyperModel(classes=10)
