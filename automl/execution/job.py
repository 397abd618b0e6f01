"""What crosses into training: one typed ``TrainJob``, the ``Executor`` interface, and the one way to train a job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from automl.data import DataSpec
from automl.training import DataShape, EpochLog, Reporter, RunOptions, TrainingData, train

ImageSink = Callable[[str, Any], None]  # (name, image): what a trial draws, for the trial's run


class TrialProcessError(RuntimeError):
    """The trial's process raised, crashed or was killed."""

    def __init__(self, message: str, oom: bool = False) -> None:
        super().__init__(message)
        self.oom = oom


@dataclass(frozen=True)
class DataRef:
    """Where training finds the splits: a ``.npz`` written once per search process ("" : the executor's own
    arrays, in memory), with what training reads of the data set besides them."""

    path: str
    spec: DataSpec
    y_std: float = 1.0

    @property
    def task(self) -> str:
        return self.spec.task


@dataclass(frozen=True)
class TrainJob:
    """Everything one fit needs, and the only thing that crosses into a trial process."""

    family: str
    params: dict[str, Any]
    data: DataRef
    epochs: int
    monitor: str
    direction: str
    seed: int
    threads: int | None = None  # CPU threads of the process that trains (None: the backend's default)
    precision: str = "float32"  # a Keras dtype policy: float32, mixed_float16, mixed_bfloat16
    deterministic: bool = False
    device: str | None = None  # "gpu:N" for a GPU slot; None: whatever the process sees
    incumbent: float | None = None  # the study's best value when the trial started: only a better model is saved
    model_path: str | None = None  # where a trial process saves the model (set by the executor)

    @classmethod
    def of(
        cls,
        family: str,
        params: dict[str, Any],
        data: DataRef,
        epochs: int,
        monitor: str,
        direction: str,
        seed: int,
        options: RunOptions | None = None,
        **more: Any,
    ) -> TrainJob:
        options = options or RunOptions()
        return cls(
            family,
            params,  # the same dict: a hypermodel's fit() in this process adds what it draws
            data,
            epochs,
            monitor,
            direction,
            seed,
            precision=options.precision,
            deterministic=options.deterministic,
            **more,
        )

    @property
    def options(self) -> RunOptions:
        return RunOptions(self.precision, self.deterministic)

    def beats_incumbent(self, value: float) -> bool:
        if self.incumbent is None:
            return True
        return value > self.incumbent if self.direction == "maximize" else value < self.incumbent


def partial_path(path: str) -> str:
    """Where a trial process writes a model before it moves it to ``path`` in one step (Keras wants ``.keras``)."""
    return f"{path.removesuffix('.keras')}.partial.keras"


BuiltHook = Callable[[EpochLog], None]  # the log before the fit: what the model runs with (dtype policies, ...)
KeptHook = Callable[[], None]  # called once a kept model is at its path


@dataclass
class TrainResult:
    """What an executor gives back: the epoch log, and how to keep the model when it may be kept.

    ``keep(path, then)`` puts the model at ``path`` and calls ``then()`` once it is there: a trial process may
    still be writing it, so that can be after ``keep`` returns. ``discard()`` drops a model not kept.
    """

    log: EpochLog
    keep: Callable[[Path, KeptHook | None], None] | None = None  # None: not kept (pruned, or not better)
    pid: int | None = None  # the process that trained it
    discard: Callable[[], None] | None = None


class Executor(Protocol):
    """Runs one ``TrainJob`` at a time per slot: here, in a pool of trial processes, or on GPU slots."""

    @property
    def data(self) -> DataRef: ...

    def run(
        self,
        job: TrainJob,
        report: Reporter | None = None,
        on_image: ImageSink | None = None,
        on_start: Callable[[int], None] | None = None,
        on_built: BuiltHook | None = None,
    ) -> TrainResult:
        """Train ``job``; ``report(epoch, value)`` says whether to stop; ``on_built(log)`` comes before the fit;
        raises ``TrialProcessError`` when the trial's process crashed or was killed."""
        ...

    def close(self) -> None: ...


def train_job(
    job: TrainJob,
    family: Any,
    shape: DataShape,
    data: TrainingData,
    report: Reporter | None = None,
    on_built: BuiltHook | None = None,
) -> tuple[Any, EpochLog]:
    """Seed, apply the job's run options and fit: every caller trains a job this one way."""
    import keras

    keras.utils.set_random_seed(job.seed)
    return train(
        family,
        job.params,
        shape,
        data,
        job.epochs,
        job.monitor,
        job.direction,
        report,
        options=job.options,
        worth_keeping=job.beats_incumbent,
        on_built=on_built,
    )
