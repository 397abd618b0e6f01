"""KerasTuner's own ``HyperXception``, imported and used unmodified.

Source: keras_tuner.applications.HyperXception (keras-team/keras-tuner, keras_tuner/src/applications/xception.py),
as the keras-io guide "Tailor the search space" builds it (https://keras.io/guides/keras_tuner/tailor_the_search_space/).
Traits: a ``HyperModel`` instance with constructor arguments; a searched number of separable-conv blocks;
``categorical_crossentropy`` (the guide overrides the loss at tuner level, which is not a hypermodel feature: here
the compiled loss is kept and the labels are one-hot encoded). Input: (28, 28, 1) becomes (8, 8, 1).
"""

from keras_tuner.applications import HyperXception

hypermodel = HyperXception(input_shape=(8, 8, 1), classes=10)
