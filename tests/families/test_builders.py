"""What the image and recurrent builders promise beyond the contract: shapes, shortcuts, variants, OOV ids."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from automl.data import DataSpec
from automl.families import cnn, resnet, rnn
from automl.layers import CapTokenIds, LastValue

IMAGE = DataSpec(kind="image", task="classification", input_shape=(8, 8, 1), n_classes=4)
RESNET = {"stem": "conv3", "n_stages": 2, "blocks_per_stage": 1, "base_width": 8, "activation": "relu"}
CNN = {"n_blocks": 4, "convs_per_block": 1, "filters": 8, "filter_growth": 1.5, "kernel_size": 3, "pooling": "max"}


def layer_names(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers]


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_resnet_variants_project_the_shortcut_only_where_the_shape_changes(block: str, version: str) -> None:
    model = resnet.build_model({**RESNET, "block": block, "version": version}, IMAGE)
    names = layer_names(model)
    assert model.name == f"resnet_{version}_{block}"
    # stage 2 halves the map and doubles the width: projected; stage 1 keeps the stem's shape for basic blocks
    assert "stage2_block1_proj" in names
    projected_first = any(n.startswith("stage1_block1_proj") for n in names)
    assert projected_first == (block == "bottleneck")  # the x4 expansion changes the channels
    assert ("post_bn" in names) == (version == "v2")
    assert model.get_layer("stage2_block1_add" if version == "v1" else "stage2_block1_out").output.shape[1:3] == (4, 4)
    assert model(np.zeros((2, 8, 8, 1), "float32")).shape == (2, 4)


def test_resnet_imagenet_stem_downsamples_4x_and_stops_at_one_pixel() -> None:
    big = DataSpec(kind="image", task="classification", input_shape=(32, 32, 3), n_classes=2)
    model = resnet.build_model({**RESNET, "stem": "conv7_pool", "block": "basic", "version": "v1"}, big)
    assert model.get_layer("stem_pool").output.shape[1:3] == (8, 8)
    deep = resnet.build_model({**RESNET, "n_stages": 4, "stem": "conv7_pool", "block": "basic", "version": "v2"}, IMAGE)
    assert deep.get_layer("stage4_block1_out").output.shape[1:3] == (1, 1)


def test_cnn_pools_while_the_map_is_two_pixels_and_grows_filters() -> None:
    model = cnn.build_model({**CNN, "head_pooling": "flatten"}, IMAGE)
    pools = [n for n in layer_names(model) if n.endswith("_pool")]
    assert pools == ["block0_pool", "block1_pool", "block2_pool"]  # 8 -> 4 -> 2 -> 1, then no more
    assert [model.get_layer(f"block{i}_conv0").filters for i in range(4)] == [8, 12, 18, 27]
    assert cnn.block_filters(128, 2.0, 4) == [128, 256, 512, 512]  # capped at MAX_FILTERS


def test_augmentation_is_active_in_training_only() -> None:
    params: dict[str, Any] = {
        **CNN,
        "n_blocks": 1,
        "augment": True,
        "flip": "horizontal",
        "rotation": 0.1,
        "zoom": 0.1,
        "translation": 0.1,
    }
    model = cnn.build_model(params, IMAGE)
    assert {"aug_flip", "aug_rotation", "aug_zoom", "aug_translation"} <= set(layer_names(model))
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=True))
    assert "aug_flip" not in layer_names(cnn.build_model({**params, "augment": False}, IMAGE))


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_rnn_cells_stack_and_go_bidirectional(cell: str) -> None:
    spec = DataSpec(kind="series", task="regression", input_shape=(12, 2), output_dim=3)
    model = rnn.build_model({"cell": cell, "n_layers": 2, "units": 8, "bidirectional": True}, spec)
    assert model.get_layer("bidirectional_0").output.shape == (None, 12, 16)  # returns sequences to the next
    assert model.get_layer("bidirectional_1").output.shape == (None, 16)
    assert model(np.zeros((2, 12, 2), "float32")).shape == (2, 3)


def test_rnn_text_keeps_the_searched_vocabulary_and_maps_the_rest_to_oov() -> None:
    spec = DataSpec(kind="text", task="classification", input_shape=(5,), n_classes=2, extra={"vocab_size": 40})
    model = rnn.build_model({"cell": "gru", "units": 4, "vocab_size": 10, "embedding_dim": 3}, spec)
    assert model.get_layer("embedding").input_dim == 10
    capped = model.get_layer("cap_vocabulary")(np.array([[0, 1, 9, 10, 39]]))
    assert np.asarray(capped).tolist() == [[0, 1, 9, 1, 1]]
    wide = rnn.build_model({"cell": "gru", "units": 4, "vocab_size": 20000, "embedding_dim": 3}, spec)
    assert wide.get_layer("embedding").input_dim == 40  # never above what the preprocessor produces


def test_rnn_forecasts_correct_the_last_observed_value() -> None:
    spec = DataSpec(kind="series", task="regression", input_shape=(6, 2), output_dim=2, extra={"target_index": 1})
    model = rnn.build_model({"cell": "gru", "units": 4}, spec)
    head = model.get_layer("output")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])  # no correction: the naive forecast
    x = np.random.default_rng(0).normal(size=(3, 6, 2)).astype("float32")
    np.testing.assert_allclose(model(x), np.repeat(x[:, -1, 1:2], 2, axis=1), rtol=1e-6)


def test_rnn_window_norm_forecasts_follow_the_windows_level_and_scale(tmp_path: Any) -> None:
    """With window_norm, shifting and stretching a window shifts and stretches its forecast the same way."""
    spec = DataSpec(kind="series", task="regression", input_shape=(16, 1), output_dim=2, extra={"target_index": 0})
    model = rnn.build_model({"cell": "lstm", "units": 8, "window_norm": True}, spec)
    assert {"window_norm", "window_scale"} <= set(layer_names(model))
    x = np.random.default_rng(1).normal(size=(4, 16, 1)).astype("float32")
    base = np.asarray(model(x))
    assert not np.allclose(base, np.repeat(x[:, -1], 2, axis=1))  # the correction is not zero
    np.testing.assert_allclose(np.asarray(model(3.0 * x + 5.0)), 3.0 * base + 5.0, rtol=1e-4, atol=1e-4)
    plain = rnn.build_model({"cell": "lstm", "units": 8, "window_norm": False}, spec)
    assert "window_norm" not in layer_names(plain)
    path = tmp_path / "norm.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)  # registered layers: no code runs at load
    np.testing.assert_allclose(np.asarray(loaded(x)), base, rtol=1e-6)


def test_custom_layers_round_trip_their_config() -> None:
    cap = CapTokenIds.from_config(CapTokenIds(7, oov_id=1, name="cap").get_config())
    assert (cap.vocab_size, cap.oov_id) == (7, 1)
    last = LastValue.from_config(LastValue(2, repeats=3, name="last").get_config())
    assert (last.index, last.repeats) == (2, 3)
