"""Sequence classification from .npz arrays (N, T, F), demo:sequence-waves, the adapter, and bad inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from automl.data import adapt_input, load_dataset, predict_inputs
from automl.errors import DataError


@pytest.fixture
def sequences_npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    y = np.array(["flat", "rising"] * 20)
    x = rng.normal(size=(40, 15, 2)) + (y == "rising")[:, None, None] * np.linspace(0, 3, 15)[None, :, None]
    path = tmp_path / "seq.npz"
    np.savez(path, x=x * 10 + 5, y=y)
    return path


def test_npz_sequences_are_normalized_with_training_statistics(sequences_npz: Path) -> None:
    data = load_dataset(str(sequences_npz), seed=0)
    assert data.spec.kind == "sequence" and data.spec.input_shape == (15, 2)
    assert data.classes == ["flat", "rising"]
    assert abs(float(data.x_train.mean())) < 1e-4 and float(data.x_train.std()) == pytest.approx(1.0, rel=1e-3)
    np.testing.assert_allclose(
        predict_inputs(data.make_preprocessor(), adapt_input(data.metadata, data.raw_test)), data.x_test, rtol=1e-5
    )
    assert adapt_input(data.metadata, data.raw_test[0]).shape == (1, 15, 2)


def test_three_d_arrays_are_images_when_declared_or_when_the_family_takes_only_images(tmp_path: Path) -> None:
    x, y = np.random.default_rng(0).random((20, 6, 6)), np.arange(20) % 2
    np.savez(tmp_path / "plain.npz", x=x, y=y)
    np.savez(tmp_path / "declared.npz", x=x, y=y, kind="image")
    assert load_dataset(str(tmp_path / "plain.npz")).spec.kind == "sequence"
    assert load_dataset(str(tmp_path / "plain.npz"), family="cnn").spec.kind == "image"
    assert load_dataset(str(tmp_path / "declared.npz"), family="rnn").spec.kind == "image"


def test_wave_demo() -> None:
    data = load_dataset("demo:sequence-waves")
    assert data.spec.input_shape == (32, 1) and data.classes == ["sawtooth", "sine", "square"]


def test_sequence_adapter_checks_the_shape(sequences_npz: Path) -> None:
    data = load_dataset(str(sequences_npz))
    with pytest.raises(DataError, match=r"expected shape \(N, 15, 2\)"):
        adapt_input(data.metadata, np.zeros((3, 14, 2)))


def test_npz_with_mismatched_lengths_is_exit_2(tmp_path: Path, cli_error: Callable[..., str]) -> None:
    np.savez(tmp_path / "uneven.npz", x=np.zeros((12, 5, 2)), y=np.zeros(11))
    line = cli_error("search", "--family", "rnn", "--data", str(tmp_path / "uneven.npz"))
    assert "uneven.npz: x has 12 rows but y has 11; they must match" in line


def test_npz_without_x_is_exit_2(tmp_path: Path, cli_error: Callable[..., str]) -> None:
    np.savez(tmp_path / "nox.npz", inputs=np.zeros((12, 5, 2)), y=np.zeros(12))
    line = cli_error("search", "--family", "rnn", "--data", str(tmp_path / "nox.npz"))
    assert "nox.npz: missing key 'x' (keys: inputs, y)" in line


def test_flat_npz_is_exit_2(tmp_path: Path, cli_error: Callable[..., str]) -> None:
    np.savez(tmp_path / "flat.npz", x=np.zeros((12, 5)), y=np.zeros(12))
    line = cli_error("search", "--family", "rnn", "--data", str(tmp_path / "flat.npz"))
    assert "flat.npz: x has shape (12, 5); expected images (N, H, W[, C]) or sequences (N, T, F)" in line
