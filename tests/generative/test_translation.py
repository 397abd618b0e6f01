"""Image translation (cyclegan, stargan): the objectives rank, the CLI searches, registers and translates, and bad
domain folders are one-line errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from typer.testing import CliRunner

from automl import families
from automl.data import DataSpec, load_dataset
from automl.data.domains import digit_domains, true_translation
from automl.export import load_keras_file
from automl.families import _translation as tr
from automl.families import cyclegan, stargan
from automl.spaces import load_default_space
from automl.training import TrainingData, train
from cli.main import app

SMALL = (8, 8)
DEMOS = {"cyclegan": "demo:digit-domains", "stargan": "demo:digit-styles"}


def domain_folder(root: Path, styles: tuple[str, ...], per_domain: int = 40) -> Path:
    """``root/<style>/<n>.png``: 8x8 digits, each in one style only (unpaired)."""
    x, domain = digit_domains(styles, SMALL)
    for style in styles:
        folder = root / style
        folder.mkdir(parents=True)
        for i, image in enumerate(x[domain == style][:per_domain]):
            Image.fromarray(image[..., 0].astype("uint8")).save(folder / f"{i:03d}.png")
    return root


def start(name: str) -> dict[str, Any]:
    return load_default_space(name).start_points("translation", "image")[0]


@pytest.mark.parametrize("name", ["cyclegan", "stargan"])
def test_objective_ranks_trained_over_untrained_over_noise(name: str) -> None:
    family = families.get(name)
    full = load_dataset(DEMOS[name], family=name, seed=0, image_size=SMALL)
    dataset = dataclasses.replace(full, x_train=full.x_train[:360], y_train=full.y_train[:360])  # time
    data = TrainingData.from_dataset(dataset)
    untrained = family.build(start(name), dataset.spec)
    model, log = train(family, start(name), dataset, data, 3, "val_fid", "minimize")
    x_val, y_val = np.asarray(data.x_val, dtype="float32"), np.asarray(data.y_val)
    features = tr.features_of(data.x_train, data.y_train)
    noise = np.random.default_rng(0).normal(size=x_val.shape).astype("float32")  # white noise, as for the GAN
    if name == "cyclegan":
        val_a, val_b = tr.by_domain(x_val, y_val, 2)
        before = cyclegan.scores(untrained, val_a, val_b, features)[0]["fid"]
        after = cyclegan.scores(model, val_a, val_b, features)[0]["fid"]
        noisy = float(np.mean([tr.frechet(features, noise[: len(val_b)], val_b), tr.frechet(features, noise, val_a)]))
    else:
        classify = tr.domain_classifier(data.x_train, data.y_train)
        generators = (untrained.get_layer("generator"), model.get_layer("generator"))
        scored = [stargan.scores(g, x_val, y_val, features, classify)[0] for g in generators]
        before, after = scored[0]["fid"], scored[1]["fid"]
        assert scored[1]["domain_accuracy"] > scored[0]["domain_accuracy"]
        noisy = float(np.mean([tr.frechet(features, noise, x_val[y_val == d]) for d in range(3)]))
    assert after < before < noisy, (after, before, noisy)
    assert after == pytest.approx(log.best_value, rel=1e-6)  # the objective is this score at the best epoch


@pytest.mark.parametrize("name", ["cyclegan", "stargan"])
def test_translator_built_at_the_extremes_trains_and_reloads(name: str, tmp_path: Path) -> None:
    family = families.get(name)
    rng = np.random.default_rng(0)
    domains = 2 if name == "cyclegan" else 3
    x, y = rng.uniform(size=(48, 8, 8, 1)).astype("float32"), np.arange(48) % domains
    spec = DataSpec("image", "translation", (8, 8, 1), n_classes=domains, extra={"n_labels": domains})
    space = load_default_space(name)
    for end in (0, -1):
        values = {param: p.extremes("translation")[end] for param, p in space.params.items()}
        params = space.suggest(optuna.trial.FixedTrial(values), "translation")
        if end == 0:  # the low end only builds and reloads (time); the high end also trains
            model = family.build(params, spec)
        else:
            model, log = train(family, params, _made(spec, x, y), TrainingData(x, y, x, y), 1, "val_fid", "minimize")
            assert log.best_value is not None and np.isfinite(log.best_value)
        path = tmp_path / f"{end}.keras"
        model.save(path)
        reloaded = load_keras_file(path)
        inputs = [x[:4], x[:4]] if name == "cyclegan" else [x[:4], np.eye(domains, dtype="float32")[y[:4]]]
        for a, b in zip(model.predict(inputs, verbose=0), reloaded.predict(inputs, verbose=0), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def _made(spec: DataSpec, x: np.ndarray, y: np.ndarray) -> Any:
    """A ``Dataset`` around in-memory arrays, as the search hands it over."""
    from automl.data import Dataset

    return Dataset(
        name="tiny", spec=spec, x_train=x, y_train=y, x_val=x, y_val=y, x_test=x, y_test=y, raw_test=x,
        raw_example=x[:2], make_preprocessor=lambda: None, metadata={}, description={},
    )  # fmt: skip


def test_families_outside_the_supervised_contract_are_covered_here() -> None:
    own = {name for name in families.names() if not families.get(name).supervised}
    assert own == {"cyclegan", "stargan"}  # a new one needs a contract test like the one above


def _search(runner: CliRunner, home: Path, family: str, data: Path, study: str) -> dict[str, Any]:
    result = runner.invoke(
        app,
        [
            "search", "--family", family, "--data", str(data), "--image-size", "8x8", "--trials", "1",
            "--epochs", "2", "--study", study, "--home", str(home), "--quiet", "--json", "--no-report",
            "--set", "g_filters=8", "--set", "d_filters=8", "--set", "batch_size=8",
        ],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout[result.stdout.index("{") :]))


def test_cli_cyclegan_searches_registers_both_generators_and_translates_a_folder(tmp_path: Path) -> None:
    data = domain_folder(tmp_path / "domains", ("ink", "paper"), per_domain=24)
    home, runner = tmp_path / "store", CliRunner()
    summary = _search(runner, home, "cyclegan", data, "cg")
    assert summary["metric"] == "fid" and summary["test_metrics"]["test_fid"] > 0
    assert summary["test_metrics"]["test_cycle_mae"] < 0.5
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(uri)
    assert [a.path for a in client.list_artifacts(summary["parent_run_id"], "translations")] == [
        "translations/best_grid.png"
    ]
    experiment = client.get_run(summary["parent_run_id"]).info.experiment_id
    (trial,) = client.search_runs([experiment], filter_string="tags.`automl.role` = 'trial'")
    grids = [a.path for a in client.list_artifacts(trial.info.run_id, "translations")]
    assert grids == ["translations/epoch_000.png", "translations/epoch_001.png"]
    assert len(client.get_metric_history(trial.info.run_id, "val_cycle_mae")) == 2  # logged beside the objective

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    loaded = mlflow.pyfunc.load_model("models:/cg@champion")
    ink = np.asarray(Image.open(data / "ink" / "000.png"), dtype="float32")[None, ..., None]
    out = np.asarray(loaded.predict({"image": ink, "domain": np.array([1])}))
    assert out.shape == (1, 8, 8, 1) and out.min() >= 0.0 and out.max() <= 1.0
    wrapper = loaded.unwrap_python_model()
    assert sorted(wrapper.networks) == ["ink_to_paper", "paper_to_ink"]

    result = runner.invoke(
        app,
        ["translate", "--model", "models:/cg@champion", "--data", str(data / "ink"), "--to", "paper",
         "--output", str(tmp_path / "out"), "--home", str(home)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(p.name for p in (data / "ink").iterdir())  # one PNG per input, under its name
    with Image.open(tmp_path / "out" / "000.png") as image:
        assert image.size == (8, 8)


def test_cli_stargan_translates_an_npz_and_refuses_an_unknown_domain(tmp_path: Path) -> None:
    styles = ("ink", "paper", "faded")
    data = domain_folder(tmp_path / "domains", styles, per_domain=24)
    home, runner = tmp_path / "store", CliRunner()
    summary = _search(runner, home, "stargan", data, "sg")
    assert {"test_fid", "test_domain_accuracy", "test_reconstruction_mae"} <= set(summary["test_metrics"])
    x, domain = digit_domains(styles, SMALL)
    np.savez(tmp_path / "ink.npz", x=x[domain == "ink"][:5])
    result = runner.invoke(
        app,
        ["translate", "--model", "models:/sg@champion", "--data", str(tmp_path / "ink.npz"), "--to", "faded",
         "--output", str(tmp_path / "out"), "--home", str(home)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "out" / "ink.npz") as written:
        assert written["x"].shape == (5, 8, 8, 1) and written["x"].max() <= 255.0

    bad = runner.invoke(
        app,
        ["translate", "--model", "models:/sg@champion", "--data", str(tmp_path / "ink.npz"), "--to", "sepia",
         "--output", str(tmp_path / "out2"), "--home", str(home)],
    )  # fmt: skip
    assert bad.exit_code == 2
    assert "unknown target domain 'sepia' (valid: faded, ink, paper)" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "out2").exists()


def test_cli_bad_domain_folders_are_one_line_and_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    three = domain_folder(tmp_path / "three", ("ink", "paper", "faded"), per_domain=10)
    one = domain_folder(tmp_path / "one", ("ink",), per_domain=10)
    empty = domain_folder(tmp_path / "empty", ("ink", "paper"), per_domain=10)
    (empty / "faded").mkdir()
    cases = [
        ("cyclegan", three, "cyclegan translates between exactly 2 domains"),
        ("cyclegan", empty, "domain folder 'faded' has no images"),
        ("cyclegan", one, "only one class folder"),
        ("stargan", one, "only one class folder"),
    ]
    for family, data, message in cases:
        home = tmp_path / f"store-{family}-{data.name}"
        result = runner.invoke(
            app,
            ["search", "--family", family, "--data", str(data), "--image-size", "8x8", "--trials", "1",
             "--epochs", "1", "--home", str(home), "--quiet"],
        )  # fmt: skip
        assert result.exit_code == 2, (family, data.name, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output, result.output
    task = runner.invoke(
        app,
        ["search", "--family", "cyclegan", "--data", str(three), "--task", "classification", "--trials", "1",
         "--home", str(tmp_path / "store-task"), "--quiet"],
    )  # fmt: skip
    assert task.exit_code == 2 and "does not train for classification" in task.output


def test_true_translation_of_the_demo_styles_is_their_pixel_mapping() -> None:
    ink = np.linspace(0, 1, 11, dtype="float32")
    assert np.allclose(true_translation(ink, "ink", "paper"), 1 - ink)
    assert np.allclose(true_translation(0.3 + 0.4 * ink, "faded", "paper"), 1 - ink, atol=1e-6)
