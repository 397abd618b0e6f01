"""Text classification: CSV with a text column, demo:text-sentiment, the string preprocessor, and bad inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl.data import adapt_input, load_dataset, predict_inputs
from automl.data.text import text_sentiment


@pytest.fixture
def reviews_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    good, bad = ["lovely", "fine", "great"], ["awful", "poor", "bad"]
    rows = []
    for i in range(60):
        positive = i % 2 == 0
        words = rng.choice(good if positive else bad, size=3)
        rows.append({"review": f"a {' '.join(words)} film number {i}", "stars": "up" if positive else "down"})
    rows[3]["review"] = None  # a missing text is an empty string, not an error
    path = tmp_path / "reviews.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_text_csv_becomes_token_ids_with_strings_in_the_exported_input(reviews_csv: Path) -> None:
    data = load_dataset(str(reviews_csv), text_column="review", target="stars", seed=0)
    assert data.spec.kind == "text" and data.task == "classification"
    assert data.classes == ["down", "up"]
    length = data.spec.input_shape[0]
    assert data.x_train.dtype == np.int32 and data.x_train.shape == (len(data.y_train), length)
    vocab = data.spec.extra["vocab_size"]
    assert data.x_train.max() < vocab and vocab == data.metadata["vocab_size"]
    assert list(data.raw_test.columns) == ["review"]
    # the preprocessor turns the raw strings into the same ids the family was trained on
    ids = predict_inputs(data.make_preprocessor(), adapt_input(data.metadata, data.raw_test))
    np.testing.assert_array_equal(ids, data.x_test)


def test_unknown_words_map_to_the_oov_id(reviews_csv: Path) -> None:
    data = load_dataset(str(reviews_csv), text_column="review", target="stars")
    ids = predict_inputs(data.make_preprocessor(), adapt_input(data.metadata, ["zzyzx lovely"]))
    assert ids[0, 0] == 1 and ids[0, 1] > 1 and (ids[0, 2:] == 0).all()


def test_sentiment_demo_is_the_same_whatever_the_seed() -> None:
    first, second = text_sentiment(seed=0), text_sentiment(seed=3)
    assert first.description["sha256"] == second.description["sha256"]
    assert first.classes == ["negative", "positive"]
    assert first.description["rows"] == 800
    assert not np.array_equal(first.y_test, second.y_test)  # the seed moves the split, not the data


def test_missing_text_column_is_exit_2(reviews_csv: Path, cli_error: Callable[..., str]) -> None:
    line = cli_error(
        "search", "--family", "rnn", "--data", str(reviews_csv), "--text-column", "body", "--target", "stars"
    )
    assert "reviews.csv: text column 'body' not found (columns: review, stars)" in line


def test_text_without_target_is_exit_2(reviews_csv: Path, cli_error: Callable[..., str]) -> None:
    line = cli_error("search", "--family", "rnn", "--data", str(reviews_csv), "--text-column", "review")
    assert "reviews.csv: --target is required for text" in line


def test_rnn_on_a_csv_without_text_column_or_window_is_exit_2(reviews_csv: Path, cli_error: Callable[..., str]) -> None:
    line = cli_error("search", "--family", "rnn", "--data", str(reviews_csv), "--target", "stars")
    assert "family 'rnn' takes sequence, series, text data, not tables" in line and "--text-column" in line
