"""Each family end to end through the CLI on its demo: 2 trials x 1 epoch, then `automl predict` on raw inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store for the module (its databases are set up once); each test has its own study."""
    return tmp_path_factory.mktemp("e2e") / "store"


def search(home: Path, study: str, family: str, data: str, *extra: str) -> dict[str, Any]:
    args = ["search", "--family", family, "--data", data, "--trials", "2", "--epochs", "1", "--seed", "0"]
    result = runner.invoke(app, [*args, *extra, "--study", study, "--home", str(home), "--quiet", "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    summary = json.loads(result.stdout)
    assert summary["states"]["COMPLETE"] + summary["states"]["PRUNED"] == 2
    assert summary["model_uri"] == f"models:/{study}/1"
    return summary


def predict(home: Path, study: str, data: Path, output: Path) -> pd.DataFrame:
    args = ["predict", "--model", f"models:/{study}@champion", "--data", str(data), "--output", str(output)]
    result = runner.invoke(app, [*args, "--home", str(home)])
    assert result.exit_code == 0, (result.output, result.exception)
    return pd.read_csv(output)


def digit_pngs(folder: Path, count: int = 12) -> list[str]:
    """Some scikit-learn digits as 8-bit grayscale PNGs, one sub-folder per label."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for i in range(count):
        path = folder / str(digits.target[i]) / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((digits.images[i] * 255 / 16).astype("uint8"), mode="L").save(path)
        paths.append(str(path))
    return sorted(paths)


def test_cnn_on_digit_images_then_predict_a_folder(home: Path, tmp_path: Path) -> None:
    summary = search(home, "cnn", "cnn", "demo:digits-images", "--set", "n_blocks=2", "--set", "filters=16")
    assert 0.0 <= summary["test_metrics"]["test_accuracy"] <= 1.0
    paths = digit_pngs(tmp_path / "digits")
    written = predict(home, "cnn", tmp_path / "digits", tmp_path / "out.csv")
    assert list(written.columns) == ["path", "prediction"]
    assert written["path"].tolist() == paths  # one row per file, in a stable order
    assert set(written["prediction"]) <= set(range(10))


def test_resnet_on_digit_images_then_predict_an_npz(home: Path, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    pins = ["--set", "n_stages=2", "--set", "blocks_per_stage=1", "--set", "base_width=8"]
    summary = search(home, "resnet", "resnet", "demo:digits-images", *pins)
    assert summary["best_params"]["family"] == "resnet"
    np.savez(tmp_path / "some.npz", x=load_digits().images[:9])  # raw 0..16 pixels, no channel axis
    written = predict(home, "resnet", tmp_path / "some.npz", tmp_path / "out.csv")
    assert written["index"].tolist() == list(range(9))
    assert set(written["prediction"]) <= set(range(10))


def test_rnn_on_text_then_predict_rows(home: Path, tmp_path: Path) -> None:
    search(home, "rnn-text", "rnn", "demo:text-sentiment", "--set", "n_layers=1", "--set", "units=16")
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"id": [1, 2, 3], "text": ["the plot was clever", "the cast was not fun", None]}).to_csv(rows)
    written = predict(home, "rnn-text", rows, tmp_path / "out.csv")
    assert written["id"].tolist() == [1, 2, 3]
    assert set(written["prediction"]) <= {"positive", "negative"}

    pd.DataFrame({"review": ["great"]}).to_csv(tmp_path / "other.csv", index=False)
    args = ["predict", "--model", "models:/rnn-text@champion", "--data", str(tmp_path / "other.csv"), "-o", "x.csv"]
    bad = runner.invoke(app, [*args, "--home", str(home)])
    assert bad.exit_code == 2 and "other.csv: input is missing text column 'text'" in bad.stderr


def test_rnn_on_a_series_then_forecast_every_window_of_a_csv(home: Path, tmp_path: Path) -> None:
    from automl.data.series import seasonal_frame

    pins = ["--set", "n_layers=1", "--set", "units=16", "--set", "recurrent_dropout=0"]
    summary = search(home, "rnn-series", "rnn", "demo:series-seasonal", "--window", "24", "--horizon", "2", *pins)
    assert summary["metric"] == "rmse" and summary["test_metrics"]["test_rmse"] > 0
    history = tmp_path / "history.csv"
    seasonal_frame().drop(columns=["hour"]).head(60).to_csv(history, index=False)
    written = predict(home, "rnn-series", history, tmp_path / "out.csv")
    assert len(written) == 60 and {"prediction_1", "prediction_2"} <= set(written.columns)
    assert written["prediction_1"].iloc[:23].isna().all()  # no full window before row 23
    assert written[["prediction_1", "prediction_2"]].iloc[23:].notna().all().all()
    assert written["prediction_1"].iloc[23:].between(20, 90).all()  # in load units, not standardized


def test_rnn_on_npz_sequences_then_predict_an_npz(home: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = np.array(["calm", "spiky"] * 30)
    x = rng.normal(size=(60, 20, 2)) * np.where(y == "spiky", 3.0, 1.0)[:, None, None]
    np.savez(tmp_path / "signals.npz", x=x, y=y)
    search(home, "rnn-seq", "rnn", str(tmp_path / "signals.npz"), "--set", "n_layers=1", "--set", "units=8")
    np.savez(tmp_path / "new.npz", x=x[:5])
    written = predict(home, "rnn-seq", tmp_path / "new.npz", tmp_path / "out.csv")
    assert len(written) == 5 and set(written["prediction"]) <= {"calm", "spiky"}
