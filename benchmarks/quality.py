"""Search quality per family: automl's defaults vs a hand-picked config, KerasTuner, AutoKeras and naive baselines.

Every method is scored on the same held-out test split (automl's own, loaded with automl's loader and the same
``--seed``) at an equal budget: 3 trials x 4 epochs (``--mode trials``), or ``--budget-s`` seconds (``--mode time``).

    python -m benchmarks.quality                                   # everything, 3 seeds, trials mode
    python -m benchmarks.quality --datasets digits8,series --seeds 1
    python -m benchmarks.quality --methods automl,handpicked       # updates those rows of an existing results.json

automl runs through its CLI in a subprocess (``automl search ... --json``, a fresh ``--home`` per run). The peers
(KerasTuner, AutoKeras, naive) run in their own venv (``benchmarks/setup_peers.sh``) through
``benchmarks/quality_peers.py``, which reads the split from an ``.npz``. Rows are merged into ``results.json`` by
(data set, family, method, mode, seed): a rerun replaces its own rows and keeps the others.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.common import REPO
from benchmarks.machine import describe, load_average

OUT = REPO / "benchmarks" / "results" / "quality"
PEERS_VENV = os.environ.get("PEERS_VENV", "/work/.venvs/peers")
PEERS_SCRIPT = REPO / "benchmarks" / "quality_peers.py"
ALL = "*"  # the family of a data-set-level method (AutoKeras, naive): shown in every family row of its data set
DIGITS16_NOISE = 24.0  # std of the Gaussian noise added to the 16x16 digits, in 0..255 pixel units


@dataclass(frozen=True)
class DataSetup:
    """One benchmark data set: its ``--data`` source, the families run on it, extra CLI options."""

    name: str
    source: str
    kind: str  # image, text, series, table
    families: tuple[str, ...]
    cli_options: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)  # the same options as SearchConfig fields
    task_name: str = ""  # set for the unsupervised families' data sets
    metric_name: str = ""  # the ``automl search --json`` test metric scored; set with task_name

    @property
    def task(self) -> str:
        return self.task_name or ("regression" if self.kind == "series" else "classification")

    @property
    def metric(self) -> str:
        return self.metric_name or ("test_rmse" if self.task == "regression" else "test_accuracy")


def data_setups(digits16_folder: str) -> dict[str, DataSetup]:
    return {
        "digits8": DataSetup("digits8", "demo:digits-images", "image", FAMILIES["digits8"]),
        "digits16": DataSetup(
            "digits16",
            digits16_folder,
            "image",
            FAMILIES["digits16"],
            ("--image-size", "16x16"),
            {"image_size": (16, 16)},
        ),
        "text": DataSetup("text", "demo:text-sentiment", "text", FAMILIES["text"]),
        "series": DataSetup(
            "series",
            "demo:series-seasonal",
            "series",
            FAMILIES["series"],
            ("--window", "48", "--horizon", "1"),
            {"window": 48, "horizon": 1},
        ),
        "wine": DataSetup("wine", "demo:wine", "table", FAMILIES["wine"]),
        "waves": DataSetup("waves", "demo:sequence-waves", "sequence", FAMILIES["waves"]),
        # the unsupervised families, each scored by the test metric its search optimizes
        **{
            name: DataSetup(name, source, kind, FAMILIES[name], task_name=task, metric_name=metric)
            for name, source, kind, task, metric in UNSUPERVISED
        },
    }


DATASETS = (
    *("digits8", "digits16", "text", "series", "wine", "waves"),
    *("digits8-ae", "digits8-vae", "digits8-gan", "ratings"),
)
FAMILIES = {
    "digits8": ("cnn", "resnet"),
    "digits16": ("cnn", "resnet"),
    "text": ("rnn",),
    "series": ("rnn",),
    "wine": ("mlp",),
    "waves": ("rnn",),
    "digits8-ae": ("autoencoder",),
    "digits8-vae": ("vae",),
    "digits8-gan": ("gan",),
    "ratings": ("autorec",),
}
# data set, source, kind, task, the test metric that the family's search optimizes
UNSUPERVISED = (
    ("digits8-ae", "demo:digits-images", "image", "reconstruction", "test_recon_mse"),
    ("digits8-vae", "demo:digits-images", "image", "density", "test_neg_elbo"),
    ("digits8-gan", "demo:digits-images", "image", "generation", "test_fid"),
    ("ratings", "demo:ratings", "ratings", "rating", "test_rmse"),
)
LOWER_IS_BETTER = ("test_rmse", "test_recon_mse", "test_neg_elbo", "test_fid")

# the peers that apply to a data set kind, and the family row they are shown in
KT_FAMILY_MODEL = {"cnn": "xception", "resnet": "resnet"}  # HyperXception in the cnn row, HyperResNet in resnet
METHODS = (
    *("automl", "handpicked", "kt_random", "kt_hyperband", "autokeras"),
    *("majority", "last_value", "seasonal_naive", "mean"),
)
NAIVE_METHODS = ("majority", "last_value", "seasonal_naive", "mean")
TIMED_METHODS = ("automl", "kt_random", "kt_hyperband", "autokeras")  # the others have no search to give time to
METHOD_LABELS = {
    "automl": "automl (defaults)",
    "handpicked": "hand-picked",
    "kt_random": "KT RandomSearch",
    "kt_hyperband": "KT Hyperband",
    "autokeras": "AutoKeras",
    "majority": "majority class",
    "last_value": "last value",
    "seasonal_naive": "seasonal naive (24)",
    "mean": "training mean",
}
# what the ``mean`` row of each unsupervised data set scores (computed here, on automl's split)
MEAN_BASELINES = {
    "test_recon_mse": "the training split's mean image as every reconstruction",
    "test_neg_elbo": "independent Bernoulli pixels at the training split's mean (a model that ignores its code: KL 0)",
    "test_fid": "samples of independent Gaussian pixels with the training split's mean and std, clipped to 0..1",
    "test_rmse": "each item's mean training rating (the global mean for an item without one)",
}

# one configuration per family, as a practitioner would write it without a search; pins not in the family's current
# space are dropped (and listed in the row), so a changed space does not break the benchmark
HANDPICKED: dict[str, dict[str, Any]] = {
    "mlp": {
        "n_layers": 2,
        "units": 128,
        "width_shape": "constant",
        "activation": "relu",
        "dropout": 0.1,
        "l2": 1e-5,
        "batch_norm": False,
        "batch_size": 32,
        "optimizer": "adam",
        "learning_rate": 0.001,
    },
    "cnn": {
        "augment": False,
        "n_blocks": 2,
        "convs_per_block": 1,
        "filters": 32,
        "filter_growth": 2.0,
        "kernel_size": 3,
        "pooling": "max",
        "batch_norm": False,
        "dropout": 0.1,
        "head_pooling": "flatten",
        "dense_layers": 0,
        "head_dropout": 0.2,
        "activation": "relu",
        "l2": 1e-6,
        "batch_size": 32,
        "optimizer": "adam",
        "learning_rate": 0.001,
    },
    "resnet": {
        "augment": False,
        "stem": "conv3",
        "n_stages": 2,
        "blocks_per_stage": 2,
        "base_width": 16,
        "block": "basic",
        "version": "v2",
        "dropout": 0.1,
        "activation": "relu",
        "l2": 1e-5,
        "batch_size": 32,
        "optimizer": "adam",
        "learning_rate": 0.001,
    },
    "rnn": {
        "cell": "lstm",
        "n_layers": 1,
        "units": 64,
        "bidirectional": False,
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
        "activation": "tanh",
        "head_dropout": 0.1,
        "batch_size": 32,
        "optimizer": "adam",
        "learning_rate": 0.001,
    },
    "autoencoder": {
        "architecture": "dense",
        "n_layers": 2,
        "units": 128,
        "code_size": 32,
        "activation": "relu",
        "variant": "plain",
        "recon_loss": "mse",
        "batch_size": 32,
        "optimizer": "adam",
        "learning_rate": 0.001,
    },
    "vae": {
        "architecture": "dense",
        "n_layers": 2,
        "units": 128,
        "latent_size": 16,
        "beta": 1.0,
        "activation": "relu",
        "batch_size": 32,
        "optimizer": "adam",
        "learning_rate": 0.001,
    },
    "gan": {  # the usual DCGAN recipe: Adam at 2e-4 with beta_1 0.5, batches of 64
        "architecture": "conv",
        "latent_size": 64,
        "g_layers": 2,
        "g_units": 128,
        "g_filters": 32,
        "d_layers": 2,
        "d_units": 128,
        "d_filters": 32,
        "g_learning_rate": 0.0002,
        "d_learning_rate": 0.0002,
        "beta1": 0.5,
        "label_smoothing": 0.0,
        "d_steps": 1,
        "conditional": False,
        "batch_size": 64,
    },
    "autorec": {  # the AutoRec paper's item-based setting: 500 sigmoid units
        "hidden": 500,
        "activation": "sigmoid",
        "l2": 0.001,
        "dropout": 0.0,
        "batch_size": 32,
        "optimizer": "adam",
        "learning_rate": 0.001,
    },
}
HANDPICKED_BY_KIND = {
    "text": {"embedding_dim": 64, "vocab_size": 2000, "bidirectional": True},
    "series": {"cell": "gru", "head_dropout": 0.0},
}


def handpicked_params(family: str, setup: DataSetup) -> tuple[dict[str, Any], list[str]]:
    """The hand-picked pins for ``family`` on ``setup``, restricted to the family's current space."""
    from automl.spaces import load_default_space

    wanted = {**HANDPICKED[family], **(HANDPICKED_BY_KIND.get(setup.kind, {}) if family == "rnn" else {})}
    known = load_default_space(family).params
    if "loss" in known:
        wanted["loss"] = "mse" if setup.task == "regression" else "cross_entropy"
    kept = {name: value for name, value in wanted.items() if name in known}
    return kept, sorted(set(wanted) - set(kept))


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# ---- data ----------------------------------------------------------------------------------------------------------


def write_digits16(folder: Path) -> Path:
    """scikit-learn's digits upscaled to 16x16 with Gaussian noise, as PNG files in one sub-folder per class."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    rng = np.random.default_rng(16)  # the data stay the same whatever the search seed
    folder.mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(bunch.images, bunch.target, strict=True)):
        pixels = Image.fromarray((image * (255 / 16)).astype("float32"), mode="F").resize(
            (16, 16), Image.Resampling.BILINEAR
        )
        noisy = np.asarray(pixels) + rng.normal(scale=DIGITS16_NOISE, size=(16, 16))
        target = folder / str(label)
        target.mkdir(exist_ok=True)
        Image.fromarray(np.clip(noisy, 0, 255).round().astype("uint8"), mode="L").save(target / f"{i:04d}.png")
    return folder


def load_split(setup: DataSetup, family: str, seed: int) -> Any:
    """automl's own ``Dataset`` for ``automl search --data SOURCE --family F --seed S`` (+ the setup's options)."""
    from automl.config import SearchConfig
    from automl.data import load_dataset

    config = SearchConfig(data=setup.source, family=family, seed=seed, **setup.config)
    return load_dataset(setup.source, **config.data_options())


def load_text_split(setup: DataSetup, family: str, seed: int) -> tuple[Any, dict[str, Any]]:
    """The text ``Dataset`` plus the raw strings of its three splits (AutoKeras takes strings, not token ids)."""
    import numpy as np

    import automl.data.text as text_module
    from automl.data._common import encode_target, split_indices

    original = text_module.text_dataset
    captured: dict[str, Any] = {}

    def capture(frame: Any, text_column: str, target: str, name: str, **options: Any) -> Any:
        captured.update(frame=frame, text_column=text_column, target=target, name=name, options=options)
        return original(frame, text_column, target, name, **options)

    text_module.text_dataset = capture  # type: ignore[assignment]
    try:
        dataset = load_split(setup, family, seed)
    finally:
        text_module.text_dataset = original  # type: ignore[assignment]
    options = captured["options"]
    texts = text_module.as_text(captured["frame"][captured["text_column"]])
    task, y_all, _ = encode_target(
        captured["frame"][captured["target"]], captured["name"], "target", options.get("task")
    )
    splits = split_indices(
        y_all,
        task,
        captured["name"],
        options.get("seed", 0),
        options.get("val_fraction", 0.2),
        options.get("test_fraction", 0.2),
    )
    raw = dict(zip(("text_train", "text_val", "text_test"), (texts[rows].astype(str) for rows in splits), strict=True))
    # the recomputed split must be automl's own
    assert np.array_equal(y_all[splits[0]], dataset.y_train) and np.array_equal(y_all[splits[2]], dataset.y_test)
    assert list(raw["text_test"]) == [str(t) for t in dataset.raw_test[captured["text_column"]]]
    return dataset, raw


def save_split(setup: DataSetup, seed: int, path: Path) -> dict[str, Any]:
    """Write the split that automl uses for ``seed`` to ``path`` (.npz) for the peers; returns its description."""
    import numpy as np

    family = setup.families[0]
    arrays: dict[str, Any] = {}
    if setup.kind == "text":
        dataset, raw = load_text_split(setup, family, seed)
        arrays.update(raw)
    else:
        dataset = load_split(setup, family, seed)
    for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        value = getattr(dataset, key)
        arrays[key] = np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value)
        if arrays[key].dtype == object:
            arrays[key] = arrays[key].astype(str)
    if setup.kind == "series":
        arrays["raw_test"] = np.asarray(dataset.raw_test, dtype="float32")
        arrays["target_index"] = np.asarray(dataset.spec.extra["target_index"])
    if dataset.spec.n_classes:
        arrays["n_classes"] = np.asarray(dataset.spec.n_classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return {
        "splits": dataset.description.get("splits"),
        "sha256": dataset.description.get("sha256"),
        "input_shape": list(dataset.spec.input_shape),
    }


def gaussian_pixels(x_train: Any, n: int, seed: int) -> Any:
    """``n`` samples of independent Gaussian pixels with the training split's mean and std, clipped to 0..1."""
    import numpy as np

    x = np.asarray(x_train, dtype="float64")
    samples = np.random.default_rng(seed).normal(x.mean(axis=0), x.std(axis=0), size=(n, *x.shape[1:]))
    return np.clip(samples, 0, 1).astype("float32")


def mean_baseline(setup: DataSetup, seed: int) -> dict[str, Any]:
    """The ``mean`` row of an unsupervised data set (``MEAN_BASELINES``), on automl's split for ``seed``."""
    started = time.perf_counter()
    value = naive_score(load_split(setup, setup.families[0], seed), setup.metric, seed)
    return {
        "ok": True,
        "value": value,
        "metric": setup.metric,
        "baseline": MEAN_BASELINES[setup.metric],
        "process_seconds": time.perf_counter() - started,
    }


def naive_score(dataset: Any, metric: str, seed: int) -> float:
    """``metric`` of the ``MEAN_BASELINES`` model on ``dataset``'s test split (pass the validation split as it)."""
    import numpy as np

    if metric == "test_rmse":  # ratings: x_train is the centered item x user matrix, y_train its mask
        observed = np.asarray(dataset.y_train) > 0
        mean = float(dataset.metadata["mean"])
        sums, counts = (np.asarray(dataset.x_train) * observed).sum(axis=1), observed.sum(axis=1)
        item_mean = np.append(np.where(counts > 0, sums / np.maximum(counts, 1) + mean, mean), mean)  # + unseen
        predicted = item_mean[np.asarray(dataset.x_test)[:, 1]]
        value = float(np.sqrt(np.mean(np.square(predicted - np.asarray(dataset.y_test)))))
    else:
        x_train = np.asarray(dataset.x_train, dtype="float64")
        x_test = np.asarray(dataset.x_test, dtype="float64")
        if metric == "test_recon_mse":
            value = float(np.mean(np.square(x_test - x_train.mean(axis=0))))
        elif metric == "test_neg_elbo":
            p = np.clip(x_train.mean(axis=0), 1e-7, 1 - 1e-7)
            nll = -(x_test * np.log(p) + (1 - x_test) * np.log(1 - p)).reshape(len(x_test), -1).sum(axis=1)
            value = float(np.mean(nll))
        elif metric == "test_fid":
            from automl.families._quality import feature_space, sample_score

            features = feature_space(dataset.x_train, dataset.y_train)
            value = sample_score(features, gaussian_pixels(x_train, len(x_test), seed), dataset.x_test)
        else:
            raise ValueError(f"no mean baseline for {metric}")
    return value


# ---- runs ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One benchmark cell for one seed."""

    dataset: str
    family: str
    method: str
    mode: str
    seed: int

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        return (self.dataset, self.family, self.method, self.mode, self.seed)


def peer_method(run: Run, kind: str) -> str:
    """The method name ``quality_peers.py`` knows for a benchmark run."""
    if run.method in ("kt_random", "kt_hyperband"):
        return f"kt_{KT_FAMILY_MODEL[run.family]}_{run.method.split('_')[1]}"
    if run.method == "autokeras":
        return "ak_image" if kind == "image" else "ak_text"
    return run.method


def plan_runs(args: argparse.Namespace, setups: dict[str, DataSetup]) -> list[Run]:
    """Every (data set, family, method, mode, seed) asked for that applies: seed by seed, the cheap runs first.

    A run cut short still leaves every data set with its first seeds rather than one data set with all of them.
    """
    modes = ("trials", "time") if args.mode == "both" else (args.mode,)
    cells: list[tuple[str, str, str, str]] = []
    for name in args.datasets:
        setup = setups[name]
        for mode in modes:
            for method in args.methods:
                if mode == "time" and method not in TIMED_METHODS:
                    continue
                for family in applicable_families(method, setup):
                    if args.families and family != ALL and family not in args.families:
                        continue
                    cells.append((name, family, method, mode))
    cost = {name: i for i, name in enumerate(COST_ORDER)}
    cells.sort(key=lambda c: (c[3], cost.get(c[0], 99), cost.get(c[2], 99)))
    return [Run(*cell, seed) for seed in range(args.seeds) for cell in cells]


# cheapest first, data sets and methods alike (plan order only)
COST_ORDER = (
    *("wine", "waves", "series", "text", "digits8", "digits16"),
    *("ratings", "digits8-ae", "digits8-vae", "digits8-gan"),
    *("majority", "last_value", "seasonal_naive", "mean", "handpicked", "automl", "kt_random", "kt_hyperband"),
    "autokeras",
)


def applicable_families(method: str, setup: DataSetup) -> tuple[str, ...]:
    if method in ("automl", "handpicked"):
        return setup.families
    classifies = setup.task == "classification"
    if method in ("kt_random", "kt_hyperband"):
        return tuple(f for f in setup.families if f in KT_FAMILY_MODEL) if setup.kind == "image" and classifies else ()
    if method == "autokeras":
        return (ALL,) if setup.kind in ("image", "text") and classifies else ()
    if method == "majority":
        return (ALL,) if classifies else ()
    if method in ("last_value", "seasonal_naive"):
        return (ALL,) if setup.kind == "series" else ()
    if method == "mean":
        return (ALL,) if setup.task_name else ()
    raise ValueError(f"unknown method '{method}' (methods: {', '.join(METHODS)})")


def automl_command() -> list[str]:
    found = shutil.which("automl")
    return [found] if found else [sys.executable, "-c", "from cli.main import main; main()"]


_NO_START: bool | None = None


def cli_has_no_start() -> bool:
    """Whether ``automl search --help`` lists ``--no-start`` (being added; used for the hand-picked row only)."""
    global _NO_START
    if _NO_START is None:
        out = subprocess.run(
            [*automl_command(), "search", "--help"],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
            check=False,
        )
        _NO_START = "--no-start" in out.stdout
    return _NO_START


def run_timed(command: list[str], timeout: float) -> tuple[str, str, int | None, float]:
    """Run ``command``: its stdout, stderr, exit code (None when killed at ``timeout``) and wall seconds."""
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        stdout, stderr, rc = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        stdout, stderr, rc = str(exc.stdout or ""), str(exc.stderr or ""), None
    return stdout, stderr, rc, time.perf_counter() - started


def parse_last_json(text: str) -> dict[str, Any] | None:
    """The last JSON object in ``text`` that runs to its end (``--json`` pretty-prints after any log lines)."""
    decoder = json.JSONDecoder()
    start = len(text)
    while True:
        start = text.rfind("{", 0, start)
        if start < 0:
            return None
        if start == 0 or text[start - 1] == "\n":
            try:
                value, end = decoder.raw_decode(text, start)
            except json.JSONDecodeError:
                pass
            else:
                if not text[end:].strip() and isinstance(value, dict):
                    return value


def run_automl(run: Run, setup: DataSetup, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """``automl search`` through the CLI with its own ``--home``; reads the ``--json`` result."""
    home = Path(tempfile.mkdtemp(prefix=f"home-{run.method}-", dir=scratch))
    command = [
        *automl_command(),
        "search",
        "--family",
        run.family,
        "--data",
        setup.source,
        *setup.cli_options,
        "--epochs",
        str(args.epochs),
        "--seed",
        str(run.seed),
        "--home",
        str(home),
        "--json",
        "--quiet",
    ]
    row: dict[str, Any] = {}
    if run.method == "handpicked":
        pins, dropped = handpicked_params(run.family, setup)
        command += ["--trials", "1"]
        for name, value in pins.items():
            command += ["--set", f"{name}={format_value(value)}"]
        if cli_has_no_start():
            command.append("--no-start")
        row.update(pinned=pins, dropped_pins=dropped)
    elif run.mode == "time":
        command += ["--trials", "100000", "--timeout", str(args.budget_s)]
    else:
        command += ["--trials", str(args.trials)]
    stdout, stderr, rc, wall = run_timed(command, args.run_timeout)
    result = parse_last_json(stdout) or {}
    metrics = result.get("test_metrics") or {}
    value = metrics.get(setup.metric)
    row.update(
        command=shlex.join(["automl", *command[len(automl_command()) :]])
        .replace(str(home), "$HOME_TMP")
        .replace(str(scratch), "$TMP"),
        rc=rc,
        ok=value is not None,
        metric=setup.metric,
        value=value,
        test_metrics=metrics,
        trials=sum((result.get("states") or {}).get(s, 0) for s in ("COMPLETE", "PRUNED")) or None,
        states=result.get("states"),
        best_val=result.get("best_value"),
        best_params=result.get("best_params"),
        seconds=result.get("wall_seconds"),
        fit_seconds=result.get("fit_seconds"),
        stopped_reason=result.get("stopped_reason"),
        process_seconds=wall,
    )
    if value is None:
        row["error"] = (stderr.strip() or stdout.strip() or f"exit {rc}")[-3000:]
    if not args.keep_work:
        shutil.rmtree(home, ignore_errors=True)
    return row


def peers_python() -> Path:
    return Path(PEERS_VENV) / "bin" / "python"


def run_peer(run: Run, setup: DataSetup, npz: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``quality_peers.py`` in the peers' venv; reads the JSON line it prints last."""
    python = peers_python()
    if not python.exists():
        return {"ok": False, "error": f"{python} not found: run benchmarks/setup_peers.sh"}
    command = [
        str(python),
        str(PEERS_SCRIPT),
        "--npz",
        str(npz),
        "--method",
        peer_method(run, setup.kind),
        "--seed",
        str(run.seed),
        "--trials",
        str(args.trials),
        "--epochs",
        str(args.epochs),
    ]
    if run.mode == "time":
        command += ["--budget-s", str(args.budget_s)]
    stdout, stderr, rc, wall = run_timed(command, args.run_timeout)
    found: dict[str, Any] = {}
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                found = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
    row = {
        "command": shlex.join(command).replace(str(npz.parent), "$TMP"),
        "rc": rc,
        "process_seconds": wall,
        **{k: v for k, v in found.items() if k not in ("seed", "budget_s", "method")},
        "peer_method": found.get("method", peer_method(run, setup.kind)),
    }
    row["ok"] = bool(found.get("ok")) and found.get("value") is not None
    if not row["ok"] and "error" not in row:
        row["error"] = (stderr.strip() or stdout.strip() or f"exit {rc}")[-3000:]
    return row


# ---- results -------------------------------------------------------------------------------------------------------


def load_results(path: Path) -> dict[str, Any]:
    if path.exists():
        return dict(json.loads(path.read_text(encoding="utf-8")))
    return {"runs": [], "sessions": []}


def save_results(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    tmp.replace(path)


KEY = ("dataset", "family", "method", "mode", "seed")


class ResultsFile:
    """``results.json`` shared with earlier and concurrent sessions: every write re-reads it under a lock.

    A session's rows replace those of the same (data set, family, method, mode, seed) and keep every other, so
    ``--methods automl,handpicked`` later updates those rows without dropping the peers'.
    """

    def __init__(self, out: Path, session: dict[str, Any]) -> None:
        self.out = out
        self.session = session
        self.rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.extra: dict[str, Any] = {}

    def record(self, run: Run, row: dict[str, Any]) -> None:
        self.rows[run.key] = {**row, **dict(zip(KEY, run.key, strict=True))}
        self.write()

    def write(self) -> dict[str, Any]:
        import fcntl

        self.out.mkdir(parents=True, exist_ok=True)
        # the lock lives outside the results folder, so that nothing but results lands there
        digest = hashlib.sha1(str(self.out.resolve()).encode()).hexdigest()[:12]
        with open(Path(tempfile.gettempdir()) / f"automl-quality-{digest}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            results = load_results(self.out / "results.json")
            runs = [r for r in results.get("runs", []) if tuple(r[k] for k in KEY) not in self.rows]
            results["runs"] = runs + list(self.rows.values())
            sessions = [s for s in results.get("sessions", []) if s.get("id") != self.session["id"]]
            results["sessions"] = [*sessions, self.session]
            for key, value in self.extra.items():
                results[key] = {**results.get(key, {}), **value} if isinstance(value, dict) else value
            write_reports(results, self.out)
        return results


def cell_values(runs: list[dict[str, Any]], dataset: str, family: str, method: str, mode: str) -> list[float]:
    """The per-seed values of one table cell; data-set-level methods (family ``*``) fill every family row."""
    modes = (mode,) if method in TIMED_METHODS else ("trials", "time")
    return [
        float(r["value"])
        for r in runs
        if r["dataset"] == dataset
        and r["family"] in (family, ALL)
        and r["method"] == method
        and r["mode"] in modes
        and r.get("ok")
        and r.get("value") is not None
    ]


def rows_of(runs: list[dict[str, Any]], mode: str) -> list[tuple[str, str]]:
    """(data set, family) rows of the data sets that have runs in ``mode``, in the benchmark's order."""
    present = {r["dataset"] for r in runs if r["mode"] == mode}
    rows = []
    for dataset in [d for d in DATASETS if d in present]:
        families = set(FAMILIES[dataset]) | {r["family"] for r in runs if r["dataset"] == dataset} - {ALL}
        rows += [(dataset, family) for family in sorted(families)]
    return rows


def summarize_cell(values: list[float]) -> str:
    """``median (min..max, n=seeds)``."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f} (n=1)"
    return f"{statistics.median(values):.3f} ({min(values):.3f}..{max(values):.3f}, n={len(values)})"


def describe_budget(budget: dict[str, Any]) -> str:
    if "seconds" in budget:
        return f"{budget['seconds']:g} s"
    return f"{budget['trials']} trials x {budget['epochs']} epochs"


def methods_in(runs: list[dict[str, Any]], mode: str) -> list[str]:
    seen = {r["method"] for r in runs if r["mode"] == mode or r["method"] not in TIMED_METHODS}
    return [m for m in METHODS if m in seen]


def seconds_table(runs: list[dict[str, Any]], mode: str) -> list[str]:
    """Median wall seconds per data set and method (the whole process: imports, setup, search, test)."""
    cells: dict[tuple[str, str], list[float]] = {}
    for r in runs:
        if r["mode"] == mode and r.get("ok") and r.get("process_seconds") is not None:
            cells.setdefault((r["dataset"], r["method"]), []).append(float(r["process_seconds"]))
    if not cells:
        return []
    datasets = sorted({d for d, _ in cells}, key=lambda d: DATASETS.index(d) if d in DATASETS else 99)
    methods = [m for m in METHODS if any(m == mm for _, mm in cells)]
    lines = [
        "| data set | " + " | ".join(METHOD_LABELS[m] for m in methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for dataset in datasets:
        row = []
        for method in methods:
            values = cells.get((dataset, method))
            row.append(f"{statistics.median(values):.0f} s (x{len(values)})" if values else "-")
        lines.append(f"| {dataset} | " + " | ".join(row) + " |")
    return lines


def failures(runs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in runs:
        if not r.get("ok"):
            first = str(r.get("error", "")).strip().splitlines()
            lines.append(
                f"- {r['dataset']} / {r['family']} / {r['method']} / {r['mode']} / seed {r['seed']}: "
                f"`{(first[-1] if first else 'no value')[:300]}`"
            )
    return lines


def handpicked_section(runs: list[dict[str, Any]]) -> list[str]:
    """The command of each hand-picked row (one per data set and family), as it ran."""
    commands = {}
    for r in runs:
        if r["method"] == "handpicked" and r.get("command"):
            commands.setdefault((r["dataset"], r["family"]), r)
    if not commands:
        return []
    lines = ["## Hand-picked configurations", ""]
    for (dataset, family), r in sorted(commands.items()):
        dropped = f" (pins not in the space, dropped: {', '.join(r['dropped_pins'])})" if r.get("dropped_pins") else ""
        command = re.sub(r"^\S*/automl ", "automl ", r["command"])  # rows written before the path was shortened
        lines.append(f"- {dataset} / {family}{dropped}: `{command}`")
    return [*lines, ""]


def markdown(results: dict[str, Any], plot_name: str | None) -> str:
    runs = results["runs"]
    lines = [
        "# Search quality per family",
        "",
        "Held-out test split (automl's own, the same rows for every method), median over seeds (min..max). "
        "Accuracy: higher is better; RMSE, recon_mse, neg_elbo and fid: lower is better. The unsupervised families "
        "each have their own data set row (`digits8-ae`, `-vae`, `-gan`: the 8x8 digits; `ratings`: "
        "`demo:ratings`), scored by the test metric their search optimizes. `*`-methods (AutoKeras, naive) do not "
        "depend on the family: the same numbers stand in every family row of their data set. KT RandomSearch / "
        "Hyperband use `HyperXception` in the cnn rows and `HyperResNet` in the resnet rows. Generated by "
        "`python -m benchmarks.quality`; the rows of one command can be rerun without losing the others.",
        "",
    ]
    for mode in ("trials", "time"):
        rows = rows_of(runs, mode)
        if not rows:
            continue
        budgets = sorted({describe_budget(r["budget"]) for r in runs if r["mode"] == mode and r.get("budget")})
        title = "equal trials x epochs" if mode == "trials" else "equal wall-clock budget"
        lines += [f"## Budget: {title} (mode `{mode}`: {', '.join(budgets) or '-'})", ""]
        methods = [  # a column with no value in this table's rows is left out
            m for m in methods_in(runs, mode) if any(cell_values(runs, d, f, m, mode) for d, f in rows)
        ]
        lines.append("| data set | family | metric | " + " | ".join(METHOD_LABELS[m] for m in methods) + " |")
        lines.append("|---|---|---|" + "---|" * len(methods))
        for dataset, family in rows:
            metric = next((r["metric"] for r in runs if r["dataset"] == dataset and r.get("metric")), "?")
            cells = [summarize_cell(cell_values(runs, dataset, family, m, mode)) for m in methods]
            lines.append(f"| {dataset} | {family} | {metric.removeprefix('test_')} | " + " | ".join(cells) + " |")
        seeds = sorted({r["seed"] for r in runs if r["mode"] == mode})
        lines += ["", f"Seeds: {', '.join(map(str, seeds))}.", ""]
        lines += [
            "Median wall time per finished run, all families of the data set together (the whole process: imports, "
            "setup, search, test; `xN`: runs):",
            "",
            *seconds_table(runs, mode),
            "",
        ]
    if plot_name:
        lines += [f"![quality]({plot_name})", ""]
    lines += [
        "## Not covered here",
        "",
        "- autoencoder, vae, gan, autorec: no peer here searches these (AutoKeras and KerasTuner's hypermodels "
        "classify or regress), so their rows have automl, a hand-picked configuration and the `training mean` "
        "baseline only. That baseline is, per metric: "
        + "; ".join(f"{m.removeprefix('test_')}: {what}" for m, what in MEAN_BASELINES.items())
        + ". fid is the Frechet distance in automl's feature space of the 8x8 digits (what the gan family reports).",
        "- KerasTuner is run on the image sets only, AutoKeras on the image and text sets (no AutoKeras "
        "TimeseriesForecaster or StructuredDataClassifier here). The series, the waves (sequence classification) "
        "and the table have automl, the hand-picked config and the naive baselines.",
        "- AutoKeras' third initial image model asks for ImageNet weights and `imagenet_size` (224x224): both are "
        "turned off (no download, and 224x224 on 2 CPU cores would take hours). Its final refit after the search "
        "is skipped, so that its budget is the same trials x epochs.",
        "- KerasTuner Hyperband (max_epochs=4, factor=3) would train 16 model-epochs in one iteration; it is capped "
        "at trials x epochs model-epochs (the fit that reaches the cap stops there).",
        "- Mode `time`: automl gets `--trials 100000 --timeout T`, KerasTuner and AutoKeras an unlimited trial count "
        "and a deadline (no new trial after T, the running fit stops at T). The hand-picked config and the naive "
        "baselines have no search to give time to: their `trials` numbers stand in the `time` table.",
        "",
    ]
    lines += handpicked_section(runs)
    failed = failures(runs)
    if failed:
        lines += ["## Failed runs", "", *failed, ""]
    lines += ["## Commands and machine", ""]
    for session in results.get("sessions", []):
        machine = session.get("machine", {})
        lines.append(
            f"- `{session.get('command')}` ({session.get('started')} .. {session.get('finished', 'unfinished')}); "
            f"{machine.get('cpu')}, {machine.get('usable_cpus')} cores; load average "
            f"{machine.get('load_average_start')} at start, {session.get('load_average_end')} at end; "
            f"git {machine.get('git', {}).get('commit')}"
        )
    versions = results.get("peer_versions")
    if versions:
        lines.append(f"- peers' venv: {versions}")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> bool:
    """One panel per data set and mode: grouped bars (family rows x methods), whiskers min..max over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    runs = results["runs"]
    panels = [
        (mode, dataset) for mode in ("trials", "time") for dataset in dict.fromkeys(d for d, _ in rows_of(runs, mode))
    ]
    if not panels:
        return False
    columns = min(5, len(panels))
    rows = -(-len(panels) // columns)
    fig, grid = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.6 * rows + 0.4), squeeze=False)
    axes = grid.reshape(-1)
    for spare in axes[len(panels) :]:
        spare.set_visible(False)
    colors = dict(zip(METHODS, plt.get_cmap("tab10").colors, strict=False))
    shown: set[str] = set()
    for ax, (mode, dataset) in zip(axes, panels, strict=False):
        families = [f for d, f in rows_of(runs, mode) if d == dataset]
        methods = [m for m in methods_in(runs, mode) if any(cell_values(runs, dataset, f, m, mode) for f in families)]
        width = 0.8 / max(1, len(methods))
        for j, method in enumerate(methods):
            for i, family in enumerate(families):
                values = cell_values(runs, dataset, family, method, mode)
                if not values:
                    continue
                median = statistics.median(values)
                ax.bar(
                    i + (j - len(methods) / 2 + 0.5) * width,
                    median,
                    width,
                    yerr=[[median - min(values)], [max(values) - median]],
                    color=colors[method],
                    capsize=2,
                )
                shown.add(method)
        metric = next((r["metric"] for r in runs if r["dataset"] == dataset and r.get("metric")), "")
        ax.set_xticks(range(len(families)), families)
        ax.set_title(f"{dataset} ({mode})")
        ax.set_ylabel(metric.removeprefix("test_") + (" (lower is better)" if metric in LOWER_IS_BETTER else ""))
    handles = [Patch(color=colors[m], label=METHOD_LABELS[m]) for m in METHODS if m in shown]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.4 / (3.6 * rows + 0.4), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_reports(results: dict[str, Any], out: Path) -> None:
    """results.json, quality.png and results.md from all rows (callers hold the results lock)."""
    save_results(results, out / "results.json")
    plotted = plot(results, out / "quality.png")
    (out / "results.md").write_text(markdown(results, "quality.png" if plotted else None), encoding="utf-8")


def peer_versions() -> str | None:
    python = peers_python()
    if not python.exists():
        return None
    code = (
        "from importlib import metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in "
        "('autokeras', 'keras-tuner', 'keras', 'tensorflow', 'numpy')))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() or None


# ---- entry ---------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"comma list of {', '.join(DATASETS)}")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma list of {', '.join(METHODS)}")
    parser.add_argument("--families", default="", help="comma list: only these families' rows (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (the split and every method's seed)")
    parser.add_argument("--mode", choices=("trials", "time", "both"), default="trials")
    parser.add_argument("--trials", type=int, default=3, help="trials per search in mode trials")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per trial")
    parser.add_argument("--budget-s", type=float, default=120.0, help="seconds per search in mode time")
    parser.add_argument("--run-timeout", type=float, default=1800.0, help="kill a run after this many seconds")
    parser.add_argument("--out", type=Path, default=OUT, help="results folder (results.json is merged into)")
    parser.add_argument("--keep-work", action="store_true", help="keep the temp homes, splits and image folder")
    parser.add_argument("--resume", action="store_true", help="skip runs that already have a value in results.json")
    parser.add_argument("--report-only", action="store_true", help="only rebuild results.md and quality.png")
    args = parser.parse_args(argv)
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    args.families = [f.strip() for f in args.families.split(",") if f.strip()]
    for what, names, valid in (("data set", args.datasets, DATASETS), ("method", args.methods, METHODS)):
        unknown = [n for n in names if n not in valid]
        if unknown:
            parser.error(f"unknown {what}(s) {', '.join(unknown)} (valid: {', '.join(valid)})")
    return args


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report_only:
        write_reports(load_results(args.out / "results.json"), args.out)
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # a killed benchmark still records its session's end, and subprocess.run kills the run it waits for
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = Path(tempfile.mkdtemp(prefix="automl-quality-"))
    setups = data_setups(str(scratch / "digits16"))
    runs = plan_runs(args, setups)
    if args.resume:
        done = {tuple(r[k] for k in KEY) for r in load_results(args.out / "results.json")["runs"] if r.get("ok")}
        runs = [run for run in runs if run.key not in done]
    if "digits16" in args.datasets:
        write_digits16(scratch / "digits16")
    out: Path = args.out
    session = {
        "id": f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}-{os.getpid()}",
        "command": "python -m benchmarks.quality " + shlex.join(sys.argv[1:] if argv is None else argv),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": describe(),
    }
    results = ResultsFile(out, session)
    if any(r.method not in ("automl", "handpicked", "mean") for r in runs):
        results.extra["peer_versions"] = peer_versions()
    log(f"{len(runs)} runs -> {out}")
    splits: dict[tuple[str, int], Path] = {}
    try:
        for i, run in enumerate(runs, start=1):
            setup = setups[run.dataset]
            budget = (
                {"trials": args.trials, "epochs": args.epochs} if run.mode == "trials" else {"seconds": args.budget_s}
            )
            started = datetime.now(timezone.utc).isoformat(timespec="seconds")
            load = load_average()
            if run.method in ("automl", "handpicked"):
                row = run_automl(run, setup, args, scratch)
            elif run.method == "mean":
                row = mean_baseline(setup, run.seed)
            else:
                npz = splits.get((run.dataset, run.seed))
                if npz is None:
                    npz = scratch / f"{run.dataset}-seed{run.seed}.npz"
                    split = save_split(setup, run.seed, npz)
                    results.extra.setdefault("splits", {})[f"{run.dataset}/seed{run.seed}"] = split
                    splits[(run.dataset, run.seed)] = npz
                row = run_peer(run, setup, npz, args)
            row.update(
                budget=budget if run.method not in NAIVE_METHODS else None,
                metric=row.get("metric") or setup.metric,
                started=started,
                load_average_start=load,
            )
            results.record(run, row)
            shown = f"{row['value']:.4f}" if row.get("ok") else f"FAILED: {str(row.get('error'))[-200:]}"
            log(
                f"{i}/{len(runs)} {run.dataset} {run.family} {run.method} {run.mode} seed {run.seed}: {shown} "
                f"({row.get('process_seconds', 0):.0f} s)"
            )
    finally:
        session["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        session["load_average_end"] = load_average()
        merged = results.write()
        if not args.keep_work:
            shutil.rmtree(scratch, ignore_errors=True)
    failed = [r for r in merged["runs"] if not r.get("ok")]
    log(f"done; {len(failed)} failed rows in {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
