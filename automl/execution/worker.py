"""A long-lived trial process of the pool (its forkserver preloads ``automl._trial_preload``: Keras and the families).

A worker loads the training arrays once, then runs the jobs it receives one after another: each epoch's value goes to
the parent over the pipe, which answers whether to stop (pruning). Protocol, parent -> worker: ``("job", TrainJob)``
or ``("stop",)``; worker -> parent: ``("epoch", n, value)`` (answered with a bool), ``("image", name, array)``,
``("built", log)`` before the fit, then ``("done", log, will_save)`` or ``("error", text, traceback, oom,
non_finite)``; after a ``will_save`` done, ``("saved", error or None)`` once the model is written; then
``("idle", rss_bytes)`` once the trial's memory is released.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from automl.data import DataSpec
from automl.execution.job import TrainJob, partial_path, train_job
from automl.training import EpochLog, NonFiniteLoss, TrainingData, artifact_sink

OOM_ERRORS = ("ResourceExhaustedError", "MemoryError", "XlaRuntimeError")


@dataclass(frozen=True)
class _SpecOnly:
    """What training reads of a data set in a trial process: its spec and task (the splits come from the .npz)."""

    spec: DataSpec

    @property
    def task(self) -> str:
        return self.spec.task


def load_training_data(path: str, y_std: float) -> TrainingData:
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}

    def split(name: str) -> Any:
        if name in arrays:
            return arrays[name]
        return {key.split("::", 1)[1]: value for key, value in arrays.items() if key.startswith(f"{name}::")}

    return TrainingData(split("x_train"), arrays["y_train"], split("x_val"), arrays["y_val"], y_std)


def rss_bytes() -> int:
    """This process's resident memory now, not its peak (0 where /proc is not there: no recycling by growth)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class _State:
    """What a worker keeps between trials: its settings once applied, the arrays, the families it looked up."""

    def __init__(self) -> None:
        self.configured = False
        self.data_path: str | None = None
        self.data: TrainingData | None = None
        self.families: dict[str, Any] = {}

    def prepare(self, job: TrainJob) -> TrainingData:
        if not self.configured:  # thread pools and the device can only be set before the first op
            if job.device is not None and job.device.startswith("gpu:"):
                os.environ["CUDA_VISIBLE_DEVICES"] = job.device.split(":", 1)[1]
                # a GPU slot may share its GPU with others (--trials-per-gpu): take memory as it is needed
                os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
                os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
            from automl.backend import configure

            configure(job.threads)
            self.configured = True
        if self.data is None or job.data.path != self.data_path:
            self.data = load_training_data(job.data.path, job.data.y_std)
            self.data_path = job.data.path
        return self.data

    def family(self, name: str) -> Any:
        if name not in self.families:
            from automl.hypermodel import family_for

            self.families[name] = family_for(name)
        return self.families[name]


class EpochReports:
    """Epoch reports to the parent that do not wait for its answer (a ``PipelinedReporter``).

    The next epoch trains while the parent records the value and asks the pruner; a "stop" answer ends the fit
    before its next batch. The parent records nothing after the epoch it said "stop" at, so the study sees what a
    waiting reporter would have given it. Every answer is read before the trial's outcome is sent.
    """

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.due = 0  # answers not read yet
        self.stop = False

    def __call__(self, epoch: int, value: float) -> bool:
        self.conn.send(("epoch", epoch, value))
        self.due += 1
        return self.stop_requested()

    def stop_requested(self) -> bool:
        while self.due and self.conn.poll():
            self._read()
        return self.stop

    def settle(self) -> bool:
        while self.due:
            self._read()
        return self.stop

    def _read(self) -> None:
        answer = self.conn.recv()
        self.due -= 1
        self.stop = self.stop or bool(answer)


def run_one(conn: Any, state: _State, job: TrainJob) -> None:
    """Train one job and send its outcome. The model is saved only when it beats the incumbent, and after the
    outcome is sent: the parent tells the study and asks for the next trial meanwhile."""
    reports = EpochReports(conn)
    try:
        data = state.prepare(job)

        def send_image(name: str, image: Any) -> None:
            conn.send(("image", name, np.asarray(image)))

        def send_built(log: EpochLog) -> None:  # recorded by the parent while the model trains
            conn.send(("built", log))

        try:
            with artifact_sink(send_image):  # the parent logs what the trial draws to the trial's run
                model, log = train_job(
                    job, state.family(job.family), _SpecOnly(job.data.spec), data, reports, send_built
                )
        finally:
            reports.settle()  # no answer may be left in the pipe for the next trial
        log.pruned = log.pruned or reports.stop  # the answer to the last epoch came after the fit
        best = log.best_value
        save = bool(job.model_path) and best is not None and not log.pruned and job.beats_incumbent(best)
    except (BrokenPipeError, EOFError):
        raise
    except BaseException as exc:  # everything else goes back to the parent, which records the trial
        oom = type(exc).__name__ in OOM_ERRORS and ("memory" in str(exc).lower() or isinstance(exc, MemoryError))
        conn.send(
            ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc(), oom, isinstance(exc, NonFiniteLoss))
        )
        return
    conn.send(("done", log, save))
    if save:
        assert job.model_path is not None
        conn.send(("saved", save_model(model, job.model_path)))


def save_model(model: Any, path: str) -> str | None:
    """Write ``model`` to ``path`` in one step (a killed process leaves no half-written file there); the error,
    if it could not be saved."""
    partial = partial_path(path)
    try:
        model.save(partial)
        os.replace(partial, path)
    except Exception as exc:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        return f"{type(exc).__name__}: {exc}"
    return None


def _unfiltered_tracebacks() -> None:
    """Keras and TensorFlow wrap every layer call and op in a handler that trims their frames off a traceback;
    that costs about a third of building a small model (~25 ms a trial). A trial process reports a failure as a
    one-line error plus the full traceback, so the trial's record keeps the libraries' frames instead."""
    import keras

    keras.config.disable_traceback_filtering()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.debugging.disable_traceback_filtering()


def worker_main(conn: Any) -> None:
    """The trial process's loop: run jobs until told to stop or the parent goes away."""
    import keras

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means
    _unfiltered_tracebacks()
    state = _State()
    try:
        while True:
            message = conn.recv()
            if message[0] != "job":
                return
            run_one(conn, state, message[1])
            # while the parent records the trial: the trial's garbage goes, and what is left (modules and caches
            # the libraries loaded on first use) is frozen, so a full collection during the next fit scans only
            # what that trial makes
            keras.utils.clear_session(free_memory=False)
            gc.collect()
            gc.freeze()
            conn.send(("idle", rss_bytes()))
    except (BrokenPipeError, EOFError, ConnectionResetError):
        return  # the parent is gone
    finally:
        conn.close()
