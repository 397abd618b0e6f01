"""What every arm shares: the data, the fixed configs, the hand-written space, and one way of timing ``fit``."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DATA = "demo:digits"
DATA_SEED = 0  # every arm trains on the split of automl.data.load_dataset(DATA, seed=0)
FAMILY = "mlp"
TASK = "classification"
OBJECTIVE = "val_accuracy"
REPO = Path(__file__).resolve().parent.parent

# filled by the timed ``keras.Model.fit``: one row per call, in call order
FITS: list[dict[str, Any]] = []
# set by a benchmark for its trial processes (``benchmarks.fit_probe``): each timed fit appends its row here too
FIT_LOG_ENV = "AUTOML_BENCH_FIT_LOG"


def rss_mb() -> float:
    """This process's resident memory now, in MiB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load_data(seed: int = DATA_SEED) -> Any:
    """The digits split that automl itself trains on with ``SearchConfig(seed=seed)``."""
    from automl.data import load_dataset

    return load_dataset(DATA, seed=seed)


def sample_configs(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` configs drawn from ``search_spaces/mlp.yaml`` by automl's own space, with a seeded random sampler."""
    import optuna

    from automl.spaces import load_default_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_default_space(FAMILY)
    # the batch sizes the space allows on this training split (max_train_fraction): automl refuses the others
    n_train = len(load_data().y_train)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    configs = []
    for _ in range(n):
        trial = study.ask()
        configs.append(space.suggest(trial, TASK, n_train=n_train))
        study.tell(trial, 0.0)
    return configs


def save_configs(configs: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(configs, indent=1), encoding="utf-8")


def read_configs(path: str | Path) -> list[dict[str, Any]]:
    return list(json.loads(Path(path).read_text(encoding="utf-8")))


def suggest_mlp(trial: Any) -> dict[str, Any]:
    """``search_spaces/mlp.yaml`` written out by hand with Optuna calls, as a user of a plain loop would."""
    params: dict[str, Any] = {
        "n_layers": trial.suggest_int("n_layers", 1, 4),
        "units": trial.suggest_int("units", 16, 512, log=True),
        "width_shape": trial.suggest_categorical("width_shape", ["constant", "funnel"]),
        "activation": trial.suggest_categorical("activation", ["relu", "gelu", "tanh", "sigmoid", "elu", "swish"]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "l2": trial.suggest_float("l2", 1.0e-7, 1.0e-2, log=True),
        "batch_norm": trial.suggest_categorical("batch_norm", [False, True]),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64, 128, 256]),
        "loss": trial.suggest_categorical("loss", ["cross_entropy"]),
        "optimizer": trial.suggest_categorical("optimizer", ["adam", "adamw", "sgd", "rmsprop"]),
    }
    low, high = (1.0e-3, 0.3) if params["optimizer"] == "sgd" else (1.0e-4, 1.0e-2)  # SGD takes larger steps
    params["learning_rate"] = trial.suggest_float("learning_rate", low, high, log=True)
    if params["optimizer"] == "sgd":
        params["momentum"] = trial.suggest_float("momentum", 0.0, 0.99)
    if params["optimizer"] == "adamw":
        params["weight_decay"] = trial.suggest_float("weight_decay", 1.0e-6, 1.0e-2, log=True)
    return params


def build_compiled(params: Mapping[str, Any], spec: Any) -> Any:
    """The one build function of every arm: automl's MLP builder, compiled by automl's ``compile_model``."""
    from automl.families.mlp import build_model
    from automl.training import compile_model

    return compile_model(build_model(params, spec), params, TASK)


CALLBACK_HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_batch_begin",
    "on_batch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
)


def install_fit_timer() -> None:
    """Wrap ``keras.Model.fit`` with ``perf_counter``: the same Σfit measurement in every arm.

    Each row also gets ``callback_s``: the time spent in the hooks that the callbacks passed to ``fit`` override
    (per-epoch logging, checkpoints, reporting to the study): the framework's own work inside ``fit``.
    """
    import keras

    original = keras.Model.fit
    if getattr(original, "_bench_timed", False):
        return

    def timed_fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        spent = [0.0]
        restore = _time_callbacks(kwargs.get("callbacks") or [], spent)
        started = time.time()  # wall clock: comparable across the processes of one machine (fit span)
        start = time.perf_counter()
        history = None
        try:
            history = original(self, *args, **kwargs)
            return history
        finally:
            seconds = time.perf_counter() - start
            for callback, name in restore:
                with contextlib.suppress(AttributeError):
                    delattr(callback, name)
            row = {
                "seconds": seconds,
                "callback_s": spent[0],
                "started": started,
                "ended": started + seconds,
                "epochs": len(history.epoch) if history is not None else None,
                **model_fingerprint(self, kwargs.get("batch_size") or _batch_of(args)),
            }
            FITS.append(row)
            sink = os.environ.get(FIT_LOG_ENV)
            if sink:  # a trial process: the arm reads the rows back (the process may be killed, so write now)
                with open(sink, "a", encoding="utf-8") as out:
                    out.write(json.dumps(row) + "\n")

    timed_fit._bench_timed = True  # type: ignore[attr-defined]
    keras.Model.fit = timed_fit


def _batch_of(args: tuple[Any, ...]) -> int | None:
    """The batch size of a ``tf.data`` dataset handed to ``fit`` (automl's pipeline): its ``batch`` step's size.

    Read from the pipeline's steps, not by drawing a batch: that costs 10-30 ms after each timed fit, which the fit
    span would charge to the arm as overhead."""
    if not args or not hasattr(args[0], "element_spec"):
        return None
    step = args[0]
    while step is not None:
        if hasattr(step, "_batch_size"):  # tf.data's batch step (private, but stable across TF 2 releases)
            return int(step._batch_size)
        step = getattr(step, "_input_dataset", None)
    first = next(iter(args[0].take(1)))
    rows = first[0] if isinstance(first, tuple) else first
    import tensorflow as tf

    return int(tf.nest.flatten(rows)[0].shape[0])


def _time_callbacks(callbacks: list[Any], spent: list[float]) -> list[tuple[Any, str]]:
    """Time every hook a callback overrides; hooks left at Keras's default stay untouched (Keras skips those)."""
    from keras.src.utils.python_utils import is_default

    wrapped = []
    for callback in callbacks:
        for name in CALLBACK_HOOKS:
            method = getattr(callback, name, None)
            if method is None or is_default(method) or name in vars(callback):
                continue

            def timed(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return _method(*args, **kwargs)
                finally:
                    spent[0] += time.perf_counter() - start

            setattr(callback, name, timed)
            wrapped.append((callback, name))
    return wrapped


def model_fingerprint(model: Any, batch_size: Any) -> dict[str, Any]:
    """Enough of a model to tell whether two arms trained the same config."""
    try:
        lr = float(model.optimizer.learning_rate.numpy())
    except Exception:  # an optimizer with a schedule, or none
        lr = None
    return {
        "weights": int(model.count_params()),
        "layers": len(model.layers),
        "batch_size": None if batch_size is None else int(batch_size),
        "optimizer": type(model.optimizer).__name__ if getattr(model, "optimizer", None) else None,
        "learning_rate": None if lr is None else float(f"{lr:.6g}"),
    }


def test_accuracy(model: Any, dataset: Any) -> float:
    """Accuracy of a trained core network on the encoded test split."""
    import numpy as np

    probs = np.asarray(model.predict(dataset.x_test, batch_size=4096, verbose=0))
    return float(np.mean(np.argmax(probs, axis=-1) == dataset.y_test))


def quiet_libraries() -> None:
    """Keep library chatter out of the worker logs (it is not part of what is measured)."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore")
    for name in ("optuna", "mlflow", "alembic", "absl", "tensorflow", "keras_tuner"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except ImportError:
        pass
