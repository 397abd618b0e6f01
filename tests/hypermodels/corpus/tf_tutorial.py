"""``model_builder`` of the TensorFlow tutorial "Introduction to the Keras Tuner", re-created in our own words.

Source: https://www.tensorflow.org/tutorials/keras/keras_tuner (tensorflow/docs,
site/en/tutorials/keras/keras_tuner.ipynb).
Traits: a build function; ``Flatten(input_shape=...)`` as the first layer; a stepped ``hp.Int("units")``; a
``Dense(10)`` head with no activation (logits) trained with
``SparseCategoricalCrossentropy(from_logits=True)``; ``hp.Choice("learning_rate", [1e-2, 1e-3, 1e-4])`` fed to
``Adam``. Input: Fashion-MNIST's (28, 28) becomes ``demo:digits-images``'s (8, 8, 1).
"""

import keras


def model_builder(hp):
    model = keras.Sequential()
    model.add(keras.layers.Flatten(input_shape=(8, 8, 1)))
    hp_units = hp.Int("units", min_value=32, max_value=512, step=32)
    model.add(keras.layers.Dense(units=hp_units, activation="relu"))
    model.add(keras.layers.Dense(10))
    hp_learning_rate = hp.Choice("learning_rate", values=[1e-2, 1e-3, 1e-4])
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=hp_learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model
