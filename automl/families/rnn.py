"""Recurrent networks (SimpleRNN, LSTM, GRU) on sequences, time-series windows and tokenized text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from automl.data import DataSpec
from automl.families import Family
from automl.families._heads import output_head
from automl.layers import CapTokenIds, FeatureSteps, LastValue, WindowNormalize, WindowScale

CELLS = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
OOV_ID = 1  # text preprocessors number padding 0 and out-of-vocabulary 1, then tokens by falling frequency


def text_inputs(params: Mapping[str, Any], spec: DataSpec) -> tuple[Any, Any]:
    """Token ids -> (ids above the searched vocabulary -> OOV) -> masked embedding."""
    inputs = keras.Input(shape=spec.input_shape, dtype="int32", name="token_ids")
    vocab = min(int(params.get("vocab_size", spec.extra["vocab_size"])), int(spec.extra["vocab_size"]))
    ids = CapTokenIds(vocab, oov_id=OOV_ID, name="cap_vocabulary")(inputs)
    x = keras.layers.Embedding(vocab, int(params.get("embedding_dim", 64)), mask_zero=True, name="embedding")(ids)
    return inputs, x


def recurrent_stack(x: Any, params: Mapping[str, Any]) -> Any:
    """``n_layers`` recurrent layers (maybe bidirectional); only the last one returns its final state."""
    cell = CELLS[params.get("cell", "lstm")]
    n_layers = int(params.get("n_layers", 1))
    for i in range(n_layers):
        layer = cell(
            int(params["units"]),
            activation=params.get("activation", "tanh"),
            dropout=float(params.get("dropout", 0.0)),
            recurrent_dropout=float(params.get("recurrent_dropout", 0.0)),
            return_sequences=i < n_layers - 1,
            name=f"{params.get('cell', 'lstm')}_{i}",
        )
        x = keras.layers.Bidirectional(layer, name=f"bidirectional_{i}")(x) if params.get("bidirectional") else layer(x)
    return x


def build_model(params: Mapping[str, Any], spec: DataSpec) -> keras.Model:
    """(Text: embedding) -> recurrent stack -> Dropout? -> task head (``horizon`` outputs for forecasts).

    Forecasts of a series are residual: the head corrects the last observed value of the target. With
    ``window_norm``, the recurrent stack sees each window normalized by its own mean and spread, and its correction
    is scaled back by the target's spread in that window. With ``linear_skip``, a linear autoregression over the
    target's steps in the window is added too (it starts at zero), so the model can learn the seasonal-naive
    forecast, or any other linear one, from the first epoch.
    """
    if spec.kind == "text":
        inputs, x = text_inputs(params, spec)
    else:
        inputs = keras.Input(shape=spec.input_shape, name="steps")
        x = inputs
    forecast = spec.kind == "series" and "target_index" in spec.extra
    normalize = forecast and bool(params.get("window_norm"))
    if normalize:
        x = WindowNormalize(name="window_norm")(x)
    x = recurrent_stack(x, params)
    if params.get("head_dropout", 0.0) > 0:
        x = keras.layers.Dropout(params["head_dropout"], name="head_dropout")(x)
    outputs = output_head(x, spec)
    if normalize:  # the correction was learned on normalized windows: back to the series' units
        scale = WindowScale(spec.extra["target_index"], spec.output_dim, name="window_scale")(inputs)
        outputs = keras.layers.Multiply(name="correction", dtype="float32")([outputs, scale])
    if forecast:
        # forecast = last observed target + a learned correction; the series loader standardizes the target's
        # input column and the forecast targets with the same training statistics, so the two add up
        naive = LastValue(spec.extra["target_index"], spec.output_dim, name="last_value")(inputs)
        terms = [outputs, naive]
        if params.get("linear_skip"):
            steps = FeatureSteps(spec.extra["target_index"], name="target_steps")(inputs)
            terms.append(
                keras.layers.Dense(
                    spec.output_dim, use_bias=False, kernel_initializer="zeros", dtype="float32", name="linear_skip"
                )(steps)
            )
        outputs = keras.layers.Add(name="forecast", dtype="float32")(terms)
    return keras.Model(inputs, outputs, name="rnn")


FAMILY = Family(
    name="rnn",
    build=build_model,
    data_kinds=frozenset({"sequence", "text", "series"}),
    description="Recurrent network: SimpleRNN/LSTM/GRU, layers, units, bidirectional, dropouts; text embedding.",
)
