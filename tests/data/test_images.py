"""Image loaders: class folders, .npz arrays, demo:digits-images, the input adapter, and each bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl.data import adapt_input, load_dataset, predict_inputs
from automl.data.images import list_images
from automl.errors import DataError


def test_class_folders_become_labelled_resized_images(image_folder: Path) -> None:
    data = load_dataset(str(image_folder), image_size=(16, 16), seed=0)
    assert data.spec.kind == "image" and data.task == "classification"
    assert data.spec.input_shape == (16, 16, 3)
    assert data.classes == ["cat", "dog", "owl"]  # folder names: the original label space
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 24
    assert set(data.y_test) == {0, 1, 2}  # stratified: every class in the test split
    assert data.x_train.dtype == np.float32 and data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
    # the preprocessor rescales raw pixels: the exported model takes 0..255 arrays
    assert data.raw_test.max() > 1.0
    np.testing.assert_allclose(predict_inputs(data.make_preprocessor(), data.raw_test), data.x_test, rtol=1e-6)


def test_default_size_is_32_and_grayscale_folders_keep_one_channel(
    tmp_path: Path, make_images: Callable[..., None]
) -> None:
    make_images(tmp_path / "gray", {"a": 6, "b": 6}, mode="L")
    data = load_dataset(str(tmp_path / "gray"))
    assert data.spec.input_shape == (32, 32, 1)
    assert data.metadata["channels"] == 1


def test_file_paths_and_arrays_reach_the_model_the_same_way(image_folder: Path) -> None:
    data = load_dataset(str(image_folder), image_size=(10, 12))
    files = [str(p) for p in list_images(image_folder)]
    from_paths = adapt_input(data.metadata, files)
    from_frame = adapt_input(data.metadata, pd.DataFrame({"path": files}))
    assert from_paths.shape == (24, 10, 12, 3)
    np.testing.assert_array_equal(from_paths, from_frame)
    one = adapt_input(data.metadata, from_paths[0])  # a single (H, W, C) image
    assert one.shape == (1, 10, 12, 3)
    resized = adapt_input(data.metadata, np.zeros((2, 20, 24, 3)))
    assert resized.shape == (2, 10, 12, 3)


def test_npz_images_keep_their_labels_and_scale(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(30, 6, 6), dtype=np.uint8)  # 3-D bytes: grayscale images
    y = np.array(["left", "right", "up"] * 10)
    np.savez(tmp_path / "img.npz", x=x, y=y)
    data = load_dataset(str(tmp_path / "img.npz"))
    assert data.spec.kind == "image" and data.spec.input_shape == (6, 6, 1)
    assert data.classes == ["left", "right", "up"]
    assert data.metadata["pixel_scale"] == pytest.approx(1 / 255)
    resized = load_dataset(str(tmp_path / "img.npz"), image_size=(12, 12))
    assert resized.spec.input_shape == (12, 12, 1)


def test_digits_images_demo() -> None:
    data = load_dataset("demo:digits-images", seed=1)
    assert data.spec.input_shape == (8, 8, 1) and data.spec.n_classes == 10
    assert data.classes == list(range(10))
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 1797
    assert data.x_train.max() == pytest.approx(1.0)  # 0..16 pixels rescaled in the preprocessor
    # files hold 8-bit pixels: a PNG of a digit reaches the model in the demo's 0..16 units
    assert data.metadata["pixel_scale"] == pytest.approx(1 / 16)
    assert load_dataset("demo:digits-images", image_size=(16, 16)).spec.input_shape == (16, 16, 1)


def test_folder_reader_refuses_unreadable_files_by_name(tmp_path: Path, make_images: Callable[..., None]) -> None:
    make_images(tmp_path / "f", {"a": 3, "b": 3})
    (tmp_path / "f" / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken\.png: cannot read as an image"):
        load_dataset(str(tmp_path / "f"))


def test_empty_folder_is_exit_2(tmp_path: Path, cli_error: Callable[..., str]) -> None:
    (tmp_path / "empty" / "a").mkdir(parents=True)
    line = cli_error("search", "--family", "cnn", "--data", str(tmp_path / "empty"))
    assert "empty: no images in class sub-folders" in line


def test_single_class_folder_is_exit_2(
    tmp_path: Path, cli_error: Callable[..., str], make_images: Callable[..., None]
) -> None:
    make_images(tmp_path / "one", {"only": 4})
    line = cli_error("search", "--family", "cnn", "--data", str(tmp_path / "one"))
    assert "one: only one class folder with images ('only')" in line


def test_npz_with_mismatched_lengths_is_exit_2(tmp_path: Path, cli_error: Callable[..., str]) -> None:
    np.savez(tmp_path / "bad.npz", x=np.zeros((10, 8, 8, 1)), y=np.zeros(9))
    line = cli_error("search", "--family", "cnn", "--data", str(tmp_path / "bad.npz"))
    assert "bad.npz: x has 10 rows but y has 9" in line


def test_npz_without_y_is_exit_2(tmp_path: Path, cli_error: Callable[..., str]) -> None:
    np.savez(tmp_path / "nolabels.npz", x=np.zeros((10, 8, 8, 1)), labels=np.zeros(10))
    line = cli_error("search", "--family", "cnn", "--data", str(tmp_path / "nolabels.npz"))
    assert "nolabels.npz: missing key 'y' (keys: x, labels)" in line


@pytest.mark.parametrize("family", ["cnn", "resnet"])
def test_image_family_on_a_flat_table_is_exit_2(family: str, table_csv: Path, cli_error: Callable[..., str]) -> None:
    line = cli_error("search", "--family", family, "--data", str(table_csv), "--target", "y")
    assert f"family '{family}' does not fit table data" in line and "table.csv" in line and "image" in line
