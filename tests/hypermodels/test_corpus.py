"""Public KerasTuner hypermodels, re-created in ``corpus/``, each searched end to end by ``automl search``.

Every entry runs ``automl search --hypermodel FILE:TARGET --trials 2 --epochs 1`` (one trial for the two
largest) in process with the default
settings otherwise (TPE, median pruner, the lint, the report), on small demo data. It must end with exit 0 and a
registered ``champion`` that loads, or be refused before the first trial with one line and exit 2.

KerasTuner's own ResNet and Xception run on 300 of the digits (``SMALL_DIGITS``): on all 1797, one epoch of the
Xception takes 20 s on two cores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

CORPUS = Path(__file__).parent / "corpus"
RESNET_50 = ("--set", "conv3_depth=4", "--set", "conv4_depth=6")
SMALL_DIGITS = "small-digits.npz"  # written by the ``small_digits`` fixture; 300 (8, 8, 1) images, 10 classes


@dataclass(frozen=True)
class Entry:
    file: str
    target: str
    data: str
    options: tuple[str, ...] = ()
    trials: int = 2
    refused: str | None = None  # the exit-2 message expected instead of a champion


ENTRIES = [
    Entry("kerastuner_readme", "build_model", "demo:diabetes"),
    # HyperResNet's "next" version sums grouped convolutions in a Lambda layer: safe_mode would refuse it. Its
    # depths are pinned to the smallest (ResNet-50's, 23M parameters), as the "tailor the search space" guide
    # fixes a pre-built hypermodel's params: the deepest (ResNet-152's) take minutes an epoch here.
    # Their one-epoch trials are mostly graph tracing (~20 s each here): one trial each shows the same.
    Entry("hyper_resnet", "hypermodel", SMALL_DIGITS, ("--trust-model-code", *RESNET_50), trials=1),
    Entry("hyper_xception", "hypermodel", SMALL_DIGITS, trials=1),
    Entry("getting_started_basic", "build_model", "demo:digits-images"),
    Entry("getting_started_layers", "build_model", "demo:digits-images"),
    Entry("getting_started_normalize", "hypermodel", "demo:digits-images"),
    Entry("getting_started_custom_objective", "hypermodel", "demo:diabetes"),
    Entry(
        "tailor_the_search_space",
        "build_model",
        "demo:digits-images",
        refused="outputs 32 value(s) per row but the data has 10 classes",
    ),
    Entry("custom_tuner", "hypermodel", "demo:digits-images", ("--metric", "loss")),
    Entry("visualize_tuning", "build_model", "demo:digits-images", ("--image-size", "28x28")),
    Entry("failed_trials", "build_model", "demo:diabetes"),
    Entry("tf_tutorial", "model_builder", "demo:digits-images"),
    Entry("third_party_classes", "hypermodel", "demo:digits"),
]


@pytest.fixture(scope="module")
def small_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = tmp_path_factory.mktemp("corpus") / SMALL_DIGITS
    np.savez(path, x=digits.images[:300, :, :, None].astype("float32"), y=digits.target[:300])
    return path


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.file for e in ENTRIES])
def test_a_public_hypermodel_searches_and_registers_its_champion(entry: Entry, home: Path, small_digits: Path) -> None:
    from mlflow.tracking import MlflowClient
    from typer.testing import CliRunner

    import automl
    from cli.main import app

    spec = f"{CORPUS / entry.file}.py:{entry.target}"
    data = str(small_digits) if entry.data == SMALL_DIGITS else entry.data
    args = ["search", "--hypermodel", spec, "--data", data, "--trials", str(entry.trials), "--epochs", "1"]
    started = time.perf_counter()
    result = CliRunner().invoke(app, [*args, *entry.options, "--study", entry.file, "--home", str(home), "--quiet"])
    print(f"{entry.file}: exit {result.exit_code} in {time.perf_counter() - started:.1f}s")
    if entry.refused is not None:
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("automl: error: ") and entry.refused in lines[0]
        assert not (home / "optuna.db").exists()  # refused before the first trial
        return
    assert result.exit_code == 0, result.output
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.get_model_version_by_alias(entry.file, "champion").version
    model = automl.load_model(f"models:/{entry.file}@champion", home=str(home))
    assert model.count_params() > 0


def test_hyper_resnet_without_trust_model_code_is_refused_before_any_trial(home: Path, small_digits: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    spec = f"{CORPUS / 'hyper_resnet'}.py:hypermodel"
    args = ["search", "--hypermodel", spec, "--data", str(small_digits), *RESNET_50, "--home", str(home)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "is a Lambda" in result.stderr and "--trust-model-code" in result.stderr
    assert not (home / "optuna.db").exists()
