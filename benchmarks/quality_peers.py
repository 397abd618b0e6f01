"""One peer run for ``benchmarks/quality.py``: KerasTuner, AutoKeras or a naive baseline on a saved split.

Runs in the peers' own virtual environment (``benchmarks/setup_peers.sh``: AutoKeras 3.0.0 needs keras < 3.13), so
it never imports automl. The split comes from an ``.npz`` that ``quality.py`` wrote with automl's own loader, so every
method sees the same train / val / test rows. The last line printed is one JSON object: the held-out metric, the
trial count, the model-epochs and the seconds.

    python benchmarks/quality_peers.py --npz split.npz --method kt_resnet_random --seed 0 --trials 3 --epochs 4
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

NAIVE = ("majority", "last_value", "seasonal_naive")
KT_HYPERMODELS = {"resnet": "HyperResNet", "xception": "HyperXception"}
KT_TUNERS = ("random", "hyperband")
METHODS = (
    *NAIVE,
    *(f"kt_{model}_{tuner}" for model in KT_HYPERMODELS for tuner in KT_TUNERS),
    "ak_image",
    "ak_text",
)
SEASON = 24  # the seasonal-naive forecast repeats the value one day (24 hourly steps) back
MANY_TRIALS = 100_000  # "no trial limit" in time mode: the deadline stops the search


class Budget:
    """What stops a search: trials (by the tuner), model-epochs and a deadline, counted by ``BudgetCallback``.

    Module state rather than callback attributes: KerasTuner deep-copies the callbacks of every trial.
    """

    tuner: Any = None
    started: float = 0.0
    max_model_epochs: int | None = None
    deadline: float = float("inf")
    model_epochs: int = 0
    stopped_by: str | None = None

    @classmethod
    def exhausted(cls) -> str | None:
        if cls.max_model_epochs is not None and cls.model_epochs >= cls.max_model_epochs:
            return "model-epochs"
        if time.perf_counter() >= cls.deadline:
            return "time"
        return None

    @classmethod
    def stop_new_trials(cls) -> None:
        """Oracle.create_trial answers STOPPED once ``max_trials`` trials exist."""
        oracle = getattr(cls.tuner, "oracle", None)
        if oracle is not None:
            oracle.max_trials = max(1, len(oracle.trials))


def make_budget_callback() -> Any:
    import keras

    class BudgetCallback(keras.callbacks.Callback):
        """Counts model-epochs; stops the running fit, and the search, when the budget is spent."""

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            Budget.model_epochs += 1
            self._check()

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if time.perf_counter() >= Budget.deadline:
                self._check()

        def _check(self) -> None:
            reason = Budget.exhausted()
            if reason:
                Budget.stopped_by = Budget.stopped_by or reason
                self.model.stop_training = True
                Budget.stop_new_trials()

    return BudgetCallback()


def accuracy_of(predictions: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(predictions).reshape(len(y)) == y))


# ---- naive baselines ---------------------------------------------------------------------------------------------


def run_naive(method: str, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Majority class of the training labels; last value and value ``SEASON`` steps back for a series."""
    y_test = data["y_test"]
    if method == "majority":
        labels, counts = np.unique(data["y_train"], return_counts=True)
        majority = labels[np.argmax(counts)]
        return {"metric": "test_accuracy", "value": float(np.mean(y_test == majority)), "trials": 0}
    windows, target = data["raw_test"], int(data["target_index"])
    window, horizon = windows.shape[1], y_test.reshape(len(y_test), -1).shape[1]
    if method == "last_value":
        forecast = np.repeat(windows[:, -1:, target], horizon, axis=1)
    else:
        if horizon > SEASON or window < SEASON:
            raise ValueError(f"seasonal naive needs window >= {SEASON} and horizon <= {SEASON}")
        forecast = windows[:, window - SEASON : window - SEASON + horizon, target]
    err = forecast - y_test.reshape(len(y_test), -1)
    return {"metric": "test_rmse", "value": float(np.sqrt(np.mean(err**2))), "trials": 0}


# ---- KerasTuner --------------------------------------------------------------------------------------------------


def run_keras_tuner(method: str, data: dict[str, np.ndarray], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """``HyperResNet`` / ``HyperXception`` with ``RandomSearch`` / ``Hyperband`` on val_accuracy; best model on test."""
    import keras
    import keras_tuner

    _, model_name, tuner_name = method.split("_")
    n_classes = int(data["n_classes"])
    hypermodel = getattr(keras_tuner.applications, KT_HYPERMODELS[model_name])(
        input_shape=tuple(data["x_train"].shape[1:]), classes=n_classes
    )
    timed = args.budget_s is not None
    common: dict[str, Any] = {
        "hypermodel": hypermodel,
        "objective": "val_accuracy",
        "seed": args.seed + 1,  # KerasTuner treats seed=0 as "no seed"
        "directory": str(work),
        "project_name": method,
        "overwrite": True,
    }
    if tuner_name == "random":
        tuner = keras_tuner.RandomSearch(max_trials=MANY_TRIALS if timed else args.trials, **common)
    else:
        # one Hyperband iteration at max_epochs=4 is 16 model-epochs; the cap keeps it to trials x epochs
        tuner = keras_tuner.Hyperband(
            max_epochs=args.epochs, factor=3, hyperband_iterations=MANY_TRIALS if timed else 1, **common
        )
        if not timed:
            Budget.max_model_epochs = args.trials * args.epochs
    Budget.tuner = tuner
    one_hot = {k: keras.utils.to_categorical(data[k], n_classes) for k in ("y_train", "y_val")}
    tuner.search(
        data["x_train"],
        one_hot["y_train"],
        validation_data=(data["x_val"], one_hot["y_val"]),
        epochs=args.epochs,
        batch_size=args.batch_size,
        callbacks=[make_budget_callback()],
        verbose=0,
    )
    search_s = time.perf_counter() - Budget.started
    best = tuner.get_best_models(1)[0]
    predictions = np.argmax(best.predict(data["x_test"], batch_size=256, verbose=0), axis=-1)
    finished = [t for t in tuner.oracle.trials.values() if t.score is not None]
    return {
        "metric": "test_accuracy",
        "value": accuracy_of(predictions, data["y_test"]),
        "trials": len(finished),
        "search_seconds": search_s,
        "best_val": float(tuner.oracle.get_best_trials(1)[0].score),
        "best_hp": tuner.oracle.get_best_trials(1)[0].hyperparameters.values,
    }


# ---- AutoKeras ---------------------------------------------------------------------------------------------------


def no_download_image_hps() -> list[dict[str, Any]]:
    """AutoKeras' first three image models, without ImageNet weights and without resizing to 224x224.

    The third (EfficientNetB7) asks for ImageNet weights, which cannot be downloaded here; ``imagenet_size`` would
    resize 8x8 digits to 224x224, hours of CPU for 3 trials. Both become False; the rest stays AutoKeras' own.
    """
    from autokeras.tuners import task_specific

    hps = []
    for values in task_specific.IMAGE_CLASSIFIER:
        changed = dict(values)
        for name in changed:
            if name.endswith(("/pretrained", "/imagenet_size")):
                changed[name] = False
        hps.append(changed)
    return hps


def forbid_pretrained_weights() -> None:
    """Keras-application blocks never ask for ImageNet weights, also in trials after the initial ones."""
    from autokeras.blocks import basic

    original: Callable[..., Any] = basic.KerasApplicationBlock.build

    def build(self: Any, hp: Any, inputs: Any = None) -> Any:
        self.pretrained = False
        return original(self, hp, inputs)

    basic.KerasApplicationBlock.build = build  # type: ignore[method-assign]


def run_autokeras(method: str, data: dict[str, np.ndarray], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """``ImageClassifier`` / ``TextClassifier``, max_trials, epochs; the best trial's model on the test split."""
    import autokeras as ak
    import keras
    from autokeras.tuners import greedy

    timed = args.budget_s is not None
    common: dict[str, Any] = {
        "max_trials": MANY_TRIALS if timed else args.trials,
        "directory": str(work),
        "project_name": method,
        "objective": "val_accuracy",
        "overwrite": True,
        "seed": args.seed,
    }
    if method == "ak_image":
        forbid_pretrained_weights()
        initial = no_download_image_hps()

        class ImageTuner(greedy.Greedy):
            def __init__(self, **kwargs: Any) -> None:
                super().__init__(initial_hps=initial, **kwargs)

        model = ak.ImageClassifier(tuner=ImageTuner, **common)
        x = {k: data[k] for k in ("x_train", "x_val", "x_test")}
    else:
        model = ak.TextClassifier(**common)
        x = {k: data[k.replace("x_", "text_")].astype(str) for k in ("x_train", "x_val", "x_test")}
    Budget.tuner = model.tuner
    # an EarlyStopping of our own keeps AutoKeras from retraining the best model after the search (its default
    # when it inserted the EarlyStopping itself): the budget is the search's trials x epochs, as for the others
    keep = keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.epochs + 1)
    model.fit(
        x["x_train"],
        data["y_train"],
        validation_data=(x["x_val"], data["y_val"]),
        epochs=args.epochs,
        batch_size=args.batch_size,
        callbacks=[keep, make_budget_callback()],
        verbose=0,
    )
    search_s = time.perf_counter() - Budget.started
    predictions = np.asarray(model.predict(x["x_test"], verbose=0)).reshape(-1)
    labels = predictions.astype(float).astype(int) if predictions.dtype.kind in "OUS" else predictions.astype(int)
    finished = [t for t in model.tuner.oracle.trials.values() if t.score is not None]
    best = model.tuner.oracle.get_best_trials(1)[0]
    return {
        "metric": "test_accuracy",
        "value": accuracy_of(labels, data["y_test"]),
        "trials": len(finished),
        "search_seconds": search_s,
        "best_val": float(best.score),
        "best_hp": best.hyperparameters.values,
    }


# ---- entry -------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", required=True, help="the split written by benchmarks/quality.py")
    parser.add_argument("--method", required=True, choices=METHODS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--budget-s", type=float, default=None, help="time mode: no trial limit, stop at T seconds")
    parser.add_argument("--work", default=None, help="tuner folder (default: a temp folder, removed)")
    return parser.parse_args(argv)


def quiet() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    for name in ("absl", "tensorflow", "keras_tuner", "autokeras"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    loaded = np.load(args.npz, allow_pickle=False)
    data = {key: loaded[key] for key in loaded.files}
    Budget.started = time.perf_counter()
    if args.budget_s is not None:
        Budget.deadline = Budget.started + args.budget_s
    if args.method in NAIVE:
        return run_naive(args.method, data)
    import keras

    keras.utils.set_random_seed(args.seed)
    if args.method.startswith("kt_"):
        return run_keras_tuner(args.method, data, args, work)
    return run_autokeras(args.method, data, args, work)


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    quiet()
    row: dict[str, Any] = {"method": args.method, "seed": args.seed, "budget_s": args.budget_s}
    with tempfile.TemporaryDirectory(prefix="quality-peer-") as scratch:
        try:
            row.update(run(args, Path(args.work or scratch)))
            row["ok"] = True
        except Exception as exc:  # one failed peer is a row with its error, not a crashed benchmark
            row.update(ok=False, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-4000:])
    row.update(
        model_epochs=Budget.model_epochs,
        stopped_by=Budget.stopped_by,
        seconds=time.perf_counter() - getattr(Budget, "started", started),
        process_seconds=time.perf_counter() - started,
    )
    sys.stdout.flush()
    print(json.dumps(row, default=str), flush=True)
    return 0 if row["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
