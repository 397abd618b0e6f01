"""``promote`` registers what the search itself registers: the family's encoder, generator or scorer.

The params that shape the registered model's inputs and outputs (code and latent sizes) are pinned, so the two
trials' models differ only in what was searched inside them.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import optuna
import pytest
from typer.testing import CliRunner

from cli.main import app

PLAIN_DENSE = ("--set", "variant=plain", "--set", "architecture=dense")
CASES = {
    "autoencoder": ("plain", ("--set", "code_size=3")),
    "vae": ("plain", ("--set", "latent_size=2")),
    "gan": (
        "demo:digits-images",
        ("--set", "architecture=dense", "--set", "conditional=true", "--set", "latent_size=8"),
    ),
    "autorec": ("demo:ratings", ("--set", "hidden=16")),
    "anomaly": ("anomaly", ("--family", "autoencoder", "--task", "anomaly", "--target", "label", *PLAIN_DENSE)),
}


def _schemas(uri: str) -> tuple[str, str]:
    signature = mlflow.models.get_model_info(uri).signature
    assert signature is not None
    return str(signature.inputs), str(signature.outputs)


@pytest.mark.parametrize("case", list(CASES))
def test_cli_promote_registers_the_same_kind_of_model_as_the_search(
    case: str, plain_csv: Path, anomaly_csv: Path, tmp_path: Path
) -> None:
    data, options = CASES[case]
    data = {"plain": str(plain_csv), "anomaly": str(anomaly_csv)}.get(data, data)
    family = () if "--family" in options else ("--family", case)
    home = tmp_path / "store"
    where = ("--home", str(home))
    runner = CliRunner()
    args = ["--data", data, "--trials", "2", "--epochs", "1", "--study", case, *options, "--pruner", "none"]
    searched = runner.invoke(app, ["search", *family, *args, *where, "--quiet", "--json", "--no-report"])
    assert searched.exit_code == 0, searched.output
    summary = json.loads(searched.stdout[searched.stdout.index("{") :])
    study = optuna.load_study(study_name=case, storage=f"sqlite:///{home / 'optuna.db'}")
    other = next(t.number for t in study.get_trials() if t.number != study.best_trial.number)

    promoted = runner.invoke(app, ["promote", "--study", case, "--trial", str(other), *where, "--json"])
    assert promoted.exit_code == 0, promoted.output
    result = json.loads(promoted.stdout)
    assert result["version"] == "2" and result["weights"] == "retrained"
    assert set(result["test_metrics"]) == set(summary["test_metrics"])  # the family's own test metrics

    uri = f"sqlite:///{home / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    assert _schemas(f"models:/{case}/2") == _schemas(f"models:/{case}/1")
    assert str(mlflow.MlflowClient().get_model_version_by_alias(case, "champion").version) == "2"
