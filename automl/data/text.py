"""Text classification from a CSV with ``--text-column`` and ``--target``; ``demo:text-sentiment``.

The TextVectorization layer (lower-case, strip punctuation, split on whitespace, vocabulary of the training split)
lives in the preprocessor, so the exported model takes raw strings. Strings need the TensorFlow backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from automl.data import Dataset, DataSpec, content_hash, predict_inputs, register_adapter
from automl.data._common import encode_target, split_indices
from automl.data.demo import register_demo
from automl.errors import DataError

MAX_TOKENS = 20_000  # vocabulary of the preprocessor, padding and OOV included; families may keep fewer
MAX_SEQUENCE_LENGTH = 200
LENGTH_PERCENTILE = 95  # sequences are padded or cut to this percentile of the training lengths
MIN_SEQUENCE_LENGTH = 4
RAW_EXAMPLES = 5


def load_text_file(source: str, text_column: str, target: str | None = None, **options: Any) -> Dataset:
    """Read a CSV or Parquet file with a text column and a target column."""
    from automl.data.frames import read_frame

    frame = read_frame(source)
    if target is None:
        raise DataError(f"{source}: --target is required for text (columns: {', '.join(map(str, frame))})")
    return text_dataset(frame, text_column, target, name=Path(source).name, **options)


def text_dataset(
    frame: pd.DataFrame,
    text_column: str,
    target: str,
    name: str,
    task: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    **_: Any,
) -> Dataset:
    """Build a ``Dataset`` from a DataFrame with a text column and a target column."""
    for role, column in (("text", text_column), ("target", target)):
        if column not in frame.columns:
            raise DataError(f"{name}: {role} column '{column}' not found (columns: {', '.join(map(str, frame))})")
    texts = as_text(frame[text_column])
    task, y_all, classes = encode_target(frame[target], name, f"target column '{target}'", task)
    train, val, test = split_indices(y_all, task, name, seed, val_fraction, test_fraction)
    vocabulary, length = fit_vocabulary(texts[train])
    metadata: dict[str, Any] = {
        "kind": "text",
        "task": task,
        "target": target,
        "text_column": text_column,
        "classes": classes,
        "vocab_size": len(vocabulary) + 2,
        "sequence_length": length,
    }

    def make_preprocessor() -> Any:
        return build_preprocessor(vocabulary, length)

    preprocessor = make_preprocessor()

    def encode(rows: np.ndarray) -> np.ndarray:
        return predict_inputs(preprocessor, texts[rows].reshape(-1, 1)).astype("int32")

    y_scale = (float(y_all[train].mean()), float(y_all[train].std() or 1.0)) if task == "regression" else None
    spec = DataSpec(
        kind="text",
        task=task,
        input_shape=(length,),
        n_classes=len(classes) if classes else None,
        extra={"vocab_size": len(vocabulary) + 2, "sequence_length": length},
    )
    raw = pd.DataFrame({text_column: texts})
    description = {
        "name": name,
        "kind": "text",
        "rows": len(frame),
        "text_column": text_column,
        "target": target,
        "task": task,
        "classes": classes,
        "vocab_size": len(vocabulary) + 2,
        "sequence_length": length,
        "splits": {"train": len(train), "val": len(val), "test": len(test)},
        "seed": seed,
        "sha256": content_hash(frame[[text_column, target]]),
    }
    return Dataset(
        name=name,
        spec=spec,
        x_train=encode(train),
        y_train=y_all[train],
        x_val=encode(val),
        y_val=y_all[val],
        x_test=encode(test),
        y_test=y_all[test],
        raw_test=raw.iloc[test].reset_index(drop=True),
        raw_example=raw.iloc[train[:RAW_EXAMPLES]].reset_index(drop=True),
        make_preprocessor=make_preprocessor,
        metadata=metadata,
        description=description,
        classes=classes,
        y_scale=y_scale,
    )


def as_text(column: Any) -> np.ndarray:
    """Strings, with missing values as empty strings."""
    series = pd.Series(column)
    return series.astype(object).where(series.notna(), "").astype(str).to_numpy(dtype=object)


def fit_vocabulary(texts: np.ndarray) -> tuple[list[str], int]:
    """The training split's tokens by falling frequency (at most ``MAX_TOKENS``), and the padded length."""
    import keras

    vectorizer = keras.layers.TextVectorization(max_tokens=MAX_TOKENS)
    vectorizer.adapt(np.asarray(texts, dtype=str))
    vocabulary = [str(token) for token in vectorizer.get_vocabulary()[2:]]  # without padding "" and "[UNK]"
    lengths = [len(str(t).split()) for t in texts]
    length = int(np.clip(np.percentile(lengths, LENGTH_PERCENTILE), MIN_SEQUENCE_LENGTH, MAX_SEQUENCE_LENGTH))
    return vocabulary, length


def build_preprocessor(vocabulary: list[str], length: int) -> Any:
    """Raw strings (N, 1) -> token ids (N, length): 0 pads, 1 is out-of-vocabulary, then by frequency."""
    import keras

    text = keras.Input(shape=(1,), dtype="string", name="text")
    vectorize = keras.layers.TextVectorization(
        vocabulary=vocabulary or ["[empty]"], output_sequence_length=length, name="vectorize"
    )
    return keras.Model(text, vectorize(text), name="preprocess")


@register_adapter("text")
def text_to_inputs(metadata: dict[str, Any], raw: Any) -> np.ndarray:
    """A DataFrame with the text column (or a list or Series of strings) -> strings (N, 1)."""
    column = metadata["text_column"]
    if isinstance(raw, pd.DataFrame):
        if column not in raw.columns:
            raise DataError(f"input is missing text column '{column}' (columns: {', '.join(map(str, raw))})")
        raw = raw[column]
    elif isinstance(raw, str):
        raw = [raw]
    return as_text(raw).astype(str).reshape(-1, 1)


SUBJECTS = ["the movie", "this film", "the plot", "the acting", "the soundtrack", "the ending", "the cast", "the story"]
POSITIVE = ["great", "wonderful", "brilliant", "moving", "fun", "superb", "charming", "delightful", "clever"]
NEGATIVE = ["terrible", "boring", "awful", "dull", "painful", "weak", "clumsy", "forgettable", "tedious"]
INTENSIFIERS = ["", "really ", "very ", "quite ", "truly ", "so "]
TEMPLATES = [
    "{s} was {i}{a}",
    "i thought {s} was {i}{a}",
    "honestly {s} felt {i}{a}",
    "{s} is {i}{a} and i would say so again",
    "my friends agreed that {s} was {i}{a}",
    "overall {s} seemed {i}{a} to me",
]
NEGATED = ["{s} was not {a}", "i would not call {s} {a}", "{s} was never {a}"]


@register_demo("text-sentiment")
def text_sentiment(n: int = 800, **options: Any) -> Dataset:
    """Generated movie-review sentences, labelled positive/negative; some negations flip the adjective's sense."""
    rng = np.random.default_rng(4321)  # the data stay the same whatever the search seed
    rows = []
    for _ in range(n):
        positive = bool(rng.integers(0, 2))
        negate = rng.random() < 0.25
        adjective = rng.choice(NEGATIVE if positive == negate else POSITIVE)
        template = rng.choice(NEGATED if negate else TEMPLATES)
        sentence = template.format(s=rng.choice(SUBJECTS), i=rng.choice(INTENSIFIERS), a=adjective)
        rows.append((sentence, "positive" if positive else "negative"))
    frame = pd.DataFrame(rows, columns=["text", "label"])
    for key in ("target", "text_column"):
        options.pop(key, None)
    return text_dataset(frame, "text", "label", name="demo:text-sentiment", **options)
