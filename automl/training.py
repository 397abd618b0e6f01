"""Compile and fit one Keras model: losses, optimizers, metrics, per-epoch reporting, best-epoch weights."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import keras
import numpy as np

from automl.backend import intra_op_threads
from automl.config import Direction
from automl.data import Dataset, DataSpec
from automl.errors import AutoMLError

LOSSES: dict[str, Callable[[], Any]] = {
    "cross_entropy": lambda: keras.losses.SparseCategoricalCrossentropy(name="cross_entropy"),
    "mse": lambda: keras.losses.MeanSquaredError(name="mse"),
    "mae": lambda: keras.losses.MeanAbsoluteError(name="mae"),
    "huber": lambda: keras.losses.Huber(name="huber"),
}
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
# objective metric -> direction; "loss" is only comparable when the loss itself is not searched
METRICS: dict[str, dict[str, Direction]] = {
    "classification": {"accuracy": "maximize", "loss": "minimize"},
    "regression": {"rmse": "minimize", "mae": "minimize", "loss": "minimize"},
}
DEFAULT_METRIC = {"classification": "accuracy", "regression": "rmse"}
TARGET_UNIT_METRICS = ("rmse", "mae")


_ARTIFACT_SINK: ContextVar[Callable[[str, Any], None] | None] = ContextVar("automl_artifact_sink", default=None)


@contextmanager
def artifact_sink(log: Callable[[str, Any], None]) -> Iterator[None]:
    """While training one trial, send what ``log_trial_image`` gets to ``log(name, image)`` (the trial's run)."""
    token = _ARTIFACT_SINK.set(log)
    try:
        yield
    finally:
        _ARTIFACT_SINK.reset(token)


def log_trial_image(name: str, image: Any) -> None:
    """Attach an image (H, W[, C]) to the running trial's MLflow run; a no-op outside a tracked trial."""
    log = _ARTIFACT_SINK.get()
    if log is not None:
        log(name, image)


@dataclass(frozen=True)
class RunOptions:
    """How a trial's model runs, in whichever process trains it: its dtype policy and deterministic kernels.

    Applied right before each build: Keras resets the global dtype policy on ``clear_session()``, and a child
    process starts with the defaults, so a setting made once in the parent would not reach every trial.
    """

    precision: str = "float32"  # a Keras dtype policy: float32, mixed_float16, mixed_bfloat16
    deterministic: bool = False

    @classmethod
    def of(cls, mixed_precision: bool, deterministic: bool) -> RunOptions:
        return cls("mixed_float16" if mixed_precision else "float32", deterministic)

    def apply(self) -> None:
        keras.config.set_dtype_policy(self.precision)
        if self.deterministic:
            from automl.backend import enable_determinism

            enable_determinism()


def determinism_enabled() -> bool:
    """Whether this process runs TensorFlow's deterministic kernels (always False on other backends)."""
    if keras.backend.backend() != "tensorflow":
        return False
    from tensorflow.python.framework import config  # the public API can switch it on but not read it

    return bool(config.is_op_determinism_enabled())


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or Inf."""


def get_loss(name: str) -> Any:
    """A Keras loss by its space name; ``ValueError`` lists the valid names."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss '{name}' (valid: {', '.join(LOSSES)})")
    return LOSSES[name]()


def get_optimizer(params: Mapping[str, Any]) -> keras.optimizers.Optimizer:
    """A Keras optimizer from ``optimizer``, ``learning_rate`` and its own params."""
    name = params.get("optimizer", "adam")
    lr = float(params.get("learning_rate", 1e-3))
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=float(params.get("weight_decay", 1e-4)))
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=float(params.get("momentum", 0.0)))
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr)
    raise ValueError(f"unknown optimizer '{name}' (valid: {', '.join(OPTIMIZERS)})")


def task_metrics(task: str) -> list[keras.metrics.Metric]:
    if task == "classification":
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return [keras.metrics.RootMeanSquaredError(name="rmse"), keras.metrics.MeanAbsoluteError(name="mae")]


def resolve_metric(task: str, metric: str | None, family: Any = None) -> tuple[str, Direction]:
    """``(name, direction)`` of the objective; ``val_`` prefixes are accepted and dropped.

    A task beyond classification/regression takes its objectives from the family that declares it.
    """
    if family is not None and family.metrics and task in family.metrics:
        metrics = dict(family.metrics[task])
    elif task in METRICS:
        metrics = METRICS[task]
    else:
        from automl.families import task_metrics

        found = task_metrics(task)
        if not found:
            raise AutoMLError(f"task '{task}' has no objective: no registered family trains for it")
        metrics = found
    name = (metric or DEFAULT_METRIC.get(task) or next(iter(metrics))).removeprefix("val_")
    if name not in metrics:
        raise AutoMLError(f"--metric '{metric}' is not available for {task} (valid: {', '.join(metrics)})")
    return name, metrics[name]


def compile_model(model: keras.Model, params: Mapping[str, Any], task: str) -> keras.Model:
    if task not in METRICS:
        # a task without a supervised target (reconstruction, anomaly, ...): the model carries its losses (add_loss)
        model.compile(optimizer=get_optimizer(params))
        return model
    default_loss = "cross_entropy" if task == "classification" else "mse"
    model.compile(
        optimizer=get_optimizer(params),
        loss=get_loss(params.get("loss", default_loss)),
        metrics=task_metrics(task),
    )
    return model


@dataclass
class TrainingData:
    """A dataset's splits as the training loop sees them (regression targets standardized once)."""

    x_train: Any
    y_train: np.ndarray
    x_val: Any
    y_val: np.ndarray
    y_std: float = 1.0

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> TrainingData:
        if dataset.y_scale is None:
            return cls(dataset.x_train, dataset.y_train, dataset.x_val, dataset.y_val)
        mean, std = dataset.y_scale
        scale = lambda y: ((y - mean) / std).astype("float32")  # noqa: E731
        return cls(dataset.x_train, scale(dataset.y_train), dataset.x_val, scale(dataset.y_val), std)


Reporter = Callable[[int, float], bool]  # (epoch, value) -> should the trial stop (pruned)


@runtime_checkable
class PipelinedReporter(Protocol):
    """A reporter that does not wait for the answer: training goes on while the search decides whether to prune.

    ``__call__`` sends the epoch and says whether an answer so far was "stop"; ``stop_requested`` reads the answers
    that arrived, without waiting; ``settle`` waits for every answer still due.
    """

    def __call__(self, epoch: int, value: float) -> bool: ...
    def stop_requested(self) -> bool: ...
    def settle(self) -> bool: ...


@dataclass
class EpochLog:
    """What a fit produced: per-epoch metrics, the best epoch, and how it ended."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    pruned: bool = False
    fit_seconds: float = 0.0
    # what the trained model ran with, read off the model and the process that trained it
    dtype_policies: list[str] = field(default_factory=list)
    deterministic: bool = False
    threads: int | None = None  # TensorFlow's intra-op threads (0: its default); None on other backends


@dataclass
class FitResult:
    """What a family's own ``fit`` may hand back to ``train``, as KerasTuner's ``HyperModel.fit`` does.

    ``objective``: a number, a ``{metric: value}`` dict or a ``History``; it becomes the trial's value (a fit that
    evaluates the model itself need not log the monitored metric each epoch). ``model``: the model to keep instead
    of the one built, e.g. with the input preprocessing the fit applied placed in front of it.
    """

    objective: Any = None
    model: Any = None


class EpochCallback(keras.callbacks.Callback):
    """Per epoch: record metrics (in target units), report the objective, keep the best epoch's weights.

    ``require_monitor=False`` lets epochs without the monitored metric pass (a family's own fit may compute the
    objective itself and return it, see ``FitResult``); ``train`` then checks that some value was found.
    """

    def __init__(
        self,
        monitor: str,
        direction: str,
        y_std: float,
        report: Reporter | None = None,
        require_monitor: bool = True,
        worth_keeping: Callable[[float], bool] | None = None,
    ) -> None:
        """``worth_keeping(value)``: whether a model at this value could be saved (it beats the study's best);
        the best epoch's weights are copied only then. None: always."""
        super().__init__()
        self.monitor = monitor
        self.sign = 1.0 if direction == "maximize" else -1.0
        self.y_std = y_std
        self.report = report
        self.require_monitor = require_monitor
        self.worth_keeping = worth_keeping
        self.log = EpochLog()
        self._best_weights: list[np.ndarray] | None = None
        # a pipelined reporter's answer may arrive while the next epoch trains: checked before each batch
        self._stop_requested = report.stop_requested if isinstance(report, PipelinedReporter) else None

    @keras.callbacks.Callback.model.setter
    def model(self, value: Any) -> None:
        """``callback.model = model``, as custom training loops (KerasTuner's guide) set it."""
        self.set_model(value)

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self._stop_requested is not None and not self.log.pruned and self._stop_requested():
            self._prune()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._record(epoch, logs, live=True)

    def _prune(self) -> None:
        self.log.pruned = True
        self.model.stop_training = True

    def _record(self, epoch: int, logs: Mapping[str, Any] | None, live: bool) -> None:
        """One epoch's logs; ``live=False`` for an epoch replayed after the fit (no weights, no stopping)."""
        if live and self._stop_requested is not None and (self.log.pruned or self._stop_requested()):
            self._prune()  # pruned at an earlier epoch, whose answer came while this one trained: not recorded
            return
        row = {}
        for key, value in (logs or {}).items():
            number = float(value)
            if key.removeprefix("val_") in TARGET_UNIT_METRICS:
                number *= self.y_std
            row[key] = number
        self.log.history.append(row)
        loss = row.get("loss", 0.0)
        if not math.isfinite(loss):
            if live:
                self.model.stop_training = True
            raise NonFiniteLoss(f"training loss is {loss} at epoch {epoch}")
        value = row.get(self.monitor)
        if value is None:
            if not self.require_monitor:
                return
            raise KeyError(self.missing_monitor(row))
        if math.isfinite(value) and (
            self.log.best_value is None or self.sign * value > self.sign * self.log.best_value
        ):
            self.log.best_value, self.log.best_epoch = value, epoch
            if live and (self.worth_keeping is None or self.worth_keeping(value)):
                self._best_weights = self.model.get_weights()
        if live and self.report is not None and self.report(epoch, value):
            self._prune()

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._best_weights is not None and not self.log.pruned:
            self.model.set_weights(self._best_weights)

    def missing_monitor(self, row: Mapping[str, Any]) -> str:
        return f"metric '{self.monitor}' was not computed (have: {', '.join(row) or 'nothing'})"

    def take_objective(self, returned: Any) -> None:
        """The value a fit returned (a number, a ``{metric: value}`` dict, a ``History``) becomes the trial's."""
        if returned is None or self.log.pruned:
            return
        history = getattr(returned, "history", None)
        if isinstance(history, Mapping):
            if self.log.history:
                return  # a History of the fit these callbacks watched: every epoch was already seen
            rows = [dict(zip(history, values, strict=True)) for values in zip(*history.values(), strict=False)]
            for epoch, row in enumerate(rows):  # a fit that trained without these callbacks: replay its epochs
                self._record(epoch, row, live=False)
            return
        if isinstance(returned, Mapping):
            name = self.monitor.removeprefix("val_")
            key = next((k for k in (self.monitor, name) if k in returned), None)
            if key is None:
                raise KeyError(
                    f"fit() returned {{{', '.join(map(str, returned))}}}: none is the objective "
                    f"'{self.monitor}' (or '{name}')"
                )
            extra = {str(k): float(v) for k, v in returned.items()}
            value = extra[key]
        else:
            try:
                value, extra = float(returned), {}
            except (TypeError, ValueError):
                raise TypeError(
                    f"fit() returned a {type(returned).__name__}: expected a number, a {{metric: value}} dict or "
                    f"a History"
                ) from None
        if self.monitor.removeprefix("val_") in TARGET_UNIT_METRICS:
            value *= self.y_std
        if not self.log.history:
            self.log.history.append({})
        self.log.history[-1].update({**extra, self.monitor: value})
        if math.isfinite(value):  # else the trial fails as any trial without a finite objective does
            self.log.best_value, self.log.best_epoch = value, len(self.log.history) - 1


def fit_model(
    model: keras.Model,
    params: Mapping[str, Any],
    data: TrainingData,
    epochs: int,
    callbacks: list[keras.callbacks.Callback],
) -> None:
    """The default training loop: ``model.fit`` with validation after every epoch."""
    batch_size = int(params.get("batch_size", 32))
    pipelines = tf_pipelines(data, batch_size)
    if pipelines is not None:
        train_batches, val_batches = pipelines
        model.fit(
            train_batches,
            validation_data=val_batches,
            epochs=epochs,
            shuffle=False,  # the pipeline draws a new permutation each epoch
            verbose=0,
            callbacks=callbacks,
        )
        return
    model.fit(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        callbacks=callbacks,
    )


def tf_pipelines(data: TrainingData, batch_size: int) -> tuple[Any, Any] | None:
    """On TensorFlow, ``tf.data`` batches for ``fit``: None where Keras's own array handling must do.

    Each epoch draws a new permutation of row indices and gathers every batch from one tensor copy of the
    arrays, as ``fit(x, y, shuffle=True)`` would, with no shuffle buffer. Fits of small models get about 20 %
    faster than with numpy arrays handed to ``fit`` (benchmarks/results/levers.md).
    """
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    try:
        x_train = tf.nest.map_structure(tf.convert_to_tensor, data.x_train)
        y_train = tf.convert_to_tensor(data.y_train)
        val = tf.data.Dataset.from_tensor_slices((data.x_val, data.y_val)).batch(batch_size)
    except (TypeError, ValueError):  # object columns that are not all strings, ragged rows, ...
        return None
    rows = int(y_train.shape[0])

    def gather(index: Any) -> tuple[Any, Any]:
        return tf.nest.map_structure(lambda array: tf.gather(array, index), x_train), tf.gather(y_train, index)

    train = (
        tf.data.Dataset.range(rows)
        .shuffle(rows, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(gather)
        .prefetch(tf.data.AUTOTUNE)
    )
    return train, val


class DataShape(Protocol):
    """What training reads of a data set: a ``Dataset``, or in a trial's child process its spec alone."""

    @property
    def spec(self) -> DataSpec: ...
    @property
    def task(self) -> str: ...


def train(
    family: Any,
    params: Mapping[str, Any],
    dataset: DataShape,
    data: TrainingData,
    epochs: int,
    monitor: str,
    direction: str,
    report: Reporter | None = None,
    options: RunOptions | None = None,
    worth_keeping: Callable[[float], bool] | None = None,
    on_built: Callable[[EpochLog], None] | None = None,
) -> tuple[keras.Model, EpochLog]:
    """Build, compile and fit one model; returns it at its best epoch's weights with the epoch log.

    ``options`` (dtype policy, determinism) are applied before the build; None leaves the process as it is.
    ``worth_keeping(value)`` says whether a model at that value could be kept: a model whose best value is not
    worth keeping comes back at its last epoch's weights (the best epoch's are not copied). ``on_built(log)`` is
    called before the fit, once the log holds what the model runs with (dtype policies, determinism, threads).
    """
    if options is not None:
        options.apply()
    model = family.build(params, dataset.spec)
    compile_fn = getattr(family, "compile", None)
    if compile_fn is not None:
        compile_fn(model, params, dataset.spec)
    else:
        compile_model(model, params, dataset.task)
    # the default loop always logs the monitor; a family's own fit may return the objective instead (FitResult)
    callback = EpochCallback(
        monitor, direction, data.y_std, report, require_monitor=family.fit is None, worth_keeping=worth_keeping
    )
    callback.log.dtype_policies = sorted({layer.dtype_policy.name for layer in model.layers})
    callback.log.deterministic = determinism_enabled()
    callback.log.threads = intra_op_threads()
    if on_built is not None:  # what the model runs with is known now: the caller may record it during the fit
        on_built(callback.log)
    fit = family.fit or fit_model
    start = time.perf_counter()
    try:
        returned = fit(model, params, data, epochs, [callback])
    finally:
        callback.log.fit_seconds = time.perf_counter() - start
    if isinstance(returned, FitResult):
        model = returned.model if returned.model is not None else model
        returned = returned.objective
    callback.take_objective(returned)
    seen = any(callback.monitor in row for row in callback.log.history)
    if callback.log.best_value is None and not callback.log.pruned and not seen:
        raise KeyError(callback.missing_monitor(callback.log.history[-1] if callback.log.history else {}))
    return model, callback.log
