"""The exported model: preprocessing + trained network (+ target rescaling), and safe loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from automl.data import Dataset, adapt_input, predict_inputs
from automl.errors import AutoMLError


def export_model(core: Any, dataset: Dataset) -> Any:
    """A Keras model that takes raw inputs: the dataset's preprocessor, then ``core``."""
    import keras

    from automl.layers import Rescale

    preprocessor = dataset.make_preprocessor()
    outputs = core(preprocessor.output)
    if dataset.y_scale is not None:
        mean, std = dataset.y_scale
        outputs = Rescale(scale=std, offset=mean, name="to_target_units")(outputs)
    return keras.Model(preprocessor.input, outputs, name=f"automl_{core.name}")


def load_keras_file(path: str | Path, trusted: bool = False) -> Any:
    """Load a ``.keras`` file with safe_mode on (no Lambda layers, no arbitrary code), unless ``trusted``.

    ``trusted`` is for a model searched with ``--trust-model-code``: its metadata says so.
    """
    import keras

    import automl.layers  # noqa: F401  (registers the custom preprocessing layers)

    try:
        return keras.saving.load_model(str(path), safe_mode=not trusted)
    except ValueError as exc:
        if trusted:
            raise
        raise AutoMLError(
            f"{path}: refused to load (Keras safe_mode): {str(exc).splitlines()[0]} "
            f"(a model searched with --trust-model-code records that it may be loaded without safe_mode)"
        ) from None


def predict_raw(model: Any, metadata: dict[str, Any], raw: Any) -> np.ndarray:
    """Raw inputs -> predictions: labels in the original label space, or values in target units."""
    outputs = predict_inputs(model, adapt_input(metadata, raw))
    if metadata.get("threshold") is not None:
        # a scorer: one score per row, flagged above the threshold picked on the validation split
        import pandas as pd

        scores = outputs.reshape(len(outputs), -1)[:, 0].astype("float64")
        return pd.DataFrame({"score": scores, "anomaly": scores > float(metadata["threshold"])})
    if metadata.get("output_prefix"):
        # several unnamed outputs per row (latent codes, ...): one column each
        import pandas as pd

        flat = outputs.reshape(len(outputs), -1).astype("float64")
        return pd.DataFrame(flat, columns=[f"{metadata['output_prefix']}{i}" for i in range(flat.shape[1])])
    if metadata["task"] == "classification" and metadata.get("classes"):
        classes = np.asarray(metadata["classes"], dtype=object)
        labels = classes[np.argmax(outputs, axis=-1)]
        return labels.astype(type(metadata["classes"][0])) if not isinstance(metadata["classes"][0], str) else labels
    return outputs[:, 0] if outputs.ndim == 2 and outputs.shape[1] == 1 else outputs
