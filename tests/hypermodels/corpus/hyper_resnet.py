"""KerasTuner's own ``HyperResNet``, imported and used unmodified.

Source: keras_tuner.applications.HyperResNet (keras-team/keras-tuner, keras_tuner/src/applications/resnet.py), as
the keras-io getting-started guide uses it (https://keras.io/guides/keras_tuner/getting_started/, last section).
Traits: a ``HyperModel`` instance with constructor arguments; ``conditional`` depth choices over three ResNet
versions; an optimizer looked up by name and its learning rate set afterwards; ``categorical_crossentropy`` on
integer labels (one-hot labels needed). Input: the guide's (28, 28, 1) becomes ``demo:digits-images``'s (8, 8, 1).
"""

from keras_tuner.applications import HyperResNet

hypermodel = HyperResNet(input_shape=(8, 8, 1), classes=10)
