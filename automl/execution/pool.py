"""The pool executor (the default, ``--isolation process``): long-lived trial processes, one per slot.

Each process forks from a forkserver that has imported Keras, loads the training arrays once, and runs trials one
after another. A process is replaced after ``max_trials`` trials, or once its RSS has grown by more than
``max_rss_growth_mb`` since its first trial; a crash or a kill fails only its trial, and the next trial gets a new
process. The parent keeps Optuna and MLflow: the process reports each epoch and asks whether to stop (pruning).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing as mp
import os
import shutil
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from automl.data import DataSpec
from automl.execution.job import (
    BuiltHook,
    DataRef,
    ImageSink,
    KeptHook,
    TrainJob,
    TrainResult,
    TrialProcessError,
    partial_path,
)
from automl.training import NonFiniteLoss, Reporter, TrainingData

logger = logging.getLogger(__name__)
PRELOAD = "automl._trial_preload"  # outside automl.execution: its __init__ would import Keras unsilenced
IDLE_TIMEOUT_S = 120.0  # how long a process may take to release a trial's memory before it is replaced
_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = mp.get_context("forkserver")
        _CONTEXT.set_forkserver_preload([PRELOAD])
    return _CONTEXT


def start_server() -> Any:
    """Start the forkserver now (it imports Keras in the background) rather than at the first process; its
    multiprocessing context."""
    from multiprocessing import forkserver

    context = _context()
    forkserver.ensure_running()
    return context


def stop_server() -> None:
    """Kill the forkserver now (after an interrupt it may still be importing Keras); a later pool starts another."""
    from multiprocessing import forkserver

    server: Any = forkserver._forkserver  # multiprocessing has no public way to stop it
    pid = getattr(server, "_forkserver_pid", None)
    if pid is None:
        return
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError, AttributeError):
        server._stop()  # reaps it and forgets its address, so ensure_running() starts a new one


def save_training_data(data: TrainingData, folder: Path) -> Path:
    """Write the training arrays once per search process; each trial process loads them once."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"train-{os.getpid()}.npz"
    arrays: dict[str, np.ndarray] = {"y_train": data.y_train, "y_val": data.y_val}
    for split, value in (("x_train", data.x_train), ("x_val", data.x_val)):
        if isinstance(value, dict):
            arrays.update({f"{split}::{key}": np.asarray(v) for key, v in value.items()})
        else:
            arrays[split] = np.asarray(value)
    np.savez(path, allow_pickle=True, **arrays)  # numpy's default, named so no array key can be taken for it
    return path


class _TrialProcess:
    """One long-lived trial process and what the pool knows of it."""

    def __init__(self, device: str | None) -> None:
        from automl.execution.worker import worker_main

        context = _context()
        self.conn, child = context.Pipe()
        self.process = context.Process(target=worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.device = device
        self.trials = 0
        self.first_rss: int | None = None  # after its first trial: what later growth is measured from
        self.rss: int | None = None
        self.idle_pending = False  # it still owes the ("idle", rss) message of its last trial
        self.pending: _PendingModel | None = None  # the model it writes after its last trial's result

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def settle(self) -> bool:
        """Wait for the last trial's ``idle`` message (its model written first, when it saves one); False if the
        process is no longer usable."""
        if not self.idle_pending:
            return self.process.is_alive()
        self.idle_pending = False
        try:
            while True:
                if not self.conn.poll(IDLE_TIMEOUT_S):
                    return self._lost()
                message = self.conn.recv()
                if message[0] != "saved":
                    break
                self._written(message[1])
        except (EOFError, OSError):
            return self._lost()
        if message[0] != "idle":
            return self._lost()
        self.rss = int(message[1])
        if self.first_rss is None:
            self.first_rss = self.rss
        return True

    def _written(self, error: str | None) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.written(error)

    def _lost(self) -> bool:
        self._written(f"trial process {self.pid} ended before it wrote the model")
        return False

    def growth_mb(self) -> float:
        if self.rss is None or self.first_rss is None:
            return 0.0
        return (self.rss - self.first_rss) / 2**20

    def stop(self) -> None:
        """Ask it to exit once it wrote its last model; kill it if it does not."""
        self.settle()
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(("stop",))
        self.process.join(timeout=5)
        self.kill()

    def kill(self) -> None:
        """SIGKILL: a process that did not end its trial by the protocol holds nothing worth a graceful exit."""
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=10)
        self.conn.close()
        self._lost()


class PoolExecutor:
    """Long-lived trial processes, one per slot; ``devices`` names each slot's device (None: what it sees)."""

    def __init__(
        self,
        data: TrainingData,
        spec: DataSpec,
        scratch: Path,
        devices: Sequence[str | None] = (None,),
        max_trials: int = 0,
        max_rss_growth_mb: float = 0.0,
    ) -> None:
        self.scratch = scratch
        self.max_trials = max_trials  # 0: no limit
        self.max_rss_growth_mb = max_rss_growth_mb  # 0: no limit
        self._data = DataRef(str(save_training_data(data, scratch)), spec, data.y_std)
        self._devices = list(devices) or [None]
        self._slots: list[_TrialProcess | None] = [None] * len(self._devices)
        self._free = list(range(len(self._devices)))
        self._available = threading.Condition()
        self._names = itertools.count()
        self.replaced = 0  # processes retired by the recycling policy
        for index in range(len(self._slots)):  # forked now, so the first trial does not wait for it
            self._slots[index] = _TrialProcess(self._devices[index])

    @property
    def data(self) -> DataRef:
        return self._data

    def pids(self) -> list[int]:
        return [slot.pid for slot in self._slots if slot is not None]

    def _acquire(self) -> int:
        with self._available:
            while not self._free:
                self._available.wait()
            return self._free.pop(0)

    def _release(self, index: int) -> None:
        with self._available:
            self._free.append(index)
            self._available.notify()

    def _ready(self, index: int) -> _TrialProcess:
        """The slot's process, replaced first if it died or is due for recycling."""
        current = self._slots[index]
        if current is not None:
            usable = current.settle()
            due = self.max_trials and current.trials >= self.max_trials
            grown = self.max_rss_growth_mb and current.growth_mb() > self.max_rss_growth_mb
            if not usable or due or grown:
                if usable:
                    self.replaced += 1
                    logger.info(
                        "trial process %d replaced after %d trials (RSS grew by %.0f MB)",
                        current.pid,
                        current.trials,
                        current.growth_mb(),
                    )
                current.stop()
                current = None
        if current is None:
            current = _TrialProcess(self._devices[index])
            self._slots[index] = current
        return current

    def run(
        self,
        job: TrainJob,
        report: Reporter | None = None,
        on_image: ImageSink | None = None,
        on_start: Callable[[int], None] | None = None,
        on_built: BuiltHook | None = None,
    ) -> TrainResult:
        index = self._acquire()
        try:
            return self._run_on(index, job, report, on_image, on_start, on_built)
        finally:
            self._release(index)

    def _run_on(
        self,
        index: int,
        job: TrainJob,
        report: Reporter | None,
        on_image: ImageSink | None,
        on_start: Callable[[int], None] | None,
        on_built: BuiltHook | None,
    ) -> TrainResult:
        worker = self._ready(index)
        model_path = self.scratch / f"model-{os.getpid()}-{next(self._names)}.keras"
        job = replace(job, device=worker.device, model_path=str(model_path))
        answered = False  # the process ended the trial by the protocol and can take the next one
        try:
            worker.conn.send(("job", job))
            if on_start is not None:
                on_start(worker.pid)
            while True:
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    worker.process.join(timeout=10)  # it died: its exit code says how
                    break
                kind = message[0]
                if kind == "epoch":
                    worker.conn.send(bool(report(message[1], message[2])) if report else False)
                elif kind == "built":
                    if on_built is not None:
                        on_built(message[1])
                elif kind == "image":
                    if on_image is not None:
                        on_image(message[1], message[2])
                elif kind == "done":
                    answered = True
                    worker.trials += 1
                    worker.idle_pending = True
                    _, log, will_save = message
                    if not will_save:
                        return TrainResult(log, None, worker.pid)
                    worker.pending = _PendingModel(model_path)  # written while the caller records the trial
                    return TrainResult(log, worker.pending.keep, worker.pid, worker.pending.discard)
                elif kind == "error":
                    answered = True
                    worker.trials += 1
                    worker.idle_pending = True
                    _, text, child_traceback, oom, non_finite = message
                    if oom:  # a process that ran out of memory once is not trusted with the next trial
                        answered = False
                    if non_finite:
                        raise NonFiniteLoss(text.split(": ", 1)[-1])
                    raise TrialProcessError(f"{text}\n--- in the trial process ---\n{child_traceback}", oom=oom)
        finally:
            if not answered:  # interrupted, crashed or killed: this process is done
                worker.kill()
                self._slots[index] = None
        code = worker.process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = " (the kernel's out-of-memory killer sends SIGKILL)" if -code == signal.SIGKILL else ""
            raise TrialProcessError(f"trial process was killed by {name}{hint}", oom=-code == signal.SIGKILL)
        raise TrialProcessError(f"trial process exited with code {code} before reporting a result")

    def close(self) -> None:
        for index, worker in enumerate(self._slots):
            if worker is not None:
                worker.stop()
                self._slots[index] = None
        Path(self._data.path).unlink(missing_ok=True)


class _PendingModel:
    """A model its trial process writes after it sent the trial's result. Once both are known, the write's outcome
    and the caller's choice (keep it at a path, or discard it), it is moved there or removed."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self._lock = threading.Lock()
        self._outcome: tuple[str | None] | None = None  # (error or None,) once the process wrote it or failed
        self._choice: tuple[Path | None, KeptHook | None] | None = None  # (where, then); where None: discard

    def keep(self, path: Path, then: KeptHook | None = None) -> None:
        self._choose(path, then)

    def discard(self) -> None:
        self._choose(None, None)

    def written(self, error: str | None) -> None:
        with self._lock:
            self._outcome = (error,)
            ready = self._choice is not None
        if ready:
            self._finish()

    def _choose(self, path: Path | None, then: KeptHook | None) -> None:
        with self._lock:
            if self._choice is not None:  # kept already: the caller's discard() of every result is a no-op
                return
            self._choice = (path, then)
            ready = self._outcome is not None
        if ready:
            self._finish()

    def _finish(self) -> None:
        assert self._outcome is not None and self._choice is not None
        (error,), (path, then) = self._outcome, self._choice
        if error is None and path is not None:
            try:
                shutil.move(str(self.scratch), str(path))
            except OSError as exc:
                logger.warning("a kept model could not be moved to %s: %s", path, exc)
                return
            if then is not None:
                then()
            return
        self.scratch.unlink(missing_ok=True)
        Path(partial_path(str(self.scratch))).unlink(missing_ok=True)  # a process that died while writing it
        if error is not None and path is not None:
            logger.warning("a kept model could not be written (%s); the trial is retrained if it is needed", error)
