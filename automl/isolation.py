"""Trial isolation: each trial trains in a child process, so its memory goes back to the OS when it ends.

Children fork from a forkserver that has already imported Keras, so a trial pays for a fork, not an import.
The parent keeps Optuna and MLflow: the child reports each epoch and asks whether to stop (pruning).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automl.data import DataSpec
from automl.training import EpochLog, NonFiniteLoss, Reporter, RunOptions, TrainingData

_CONTEXT: Any = None


class TrialProcessError(RuntimeError):
    """The trial's child process raised, crashed or was killed."""

    def __init__(self, message: str, oom: bool = False) -> None:
        super().__init__(message)
        self.oom = oom


@dataclass
class ChildJob:
    family: str
    params: dict[str, Any]
    spec: DataSpec
    data_path: str
    epochs: int
    monitor: str
    direction: str
    y_std: float
    seed: int
    model_path: str
    threads: int | None
    options: RunOptions = field(default_factory=RunOptions)


@dataclass(frozen=True)
class _SpecOnly:
    """What training reads of a data set in the child: its spec and task (the splits come from the .npz)."""

    spec: DataSpec

    @property
    def task(self) -> str:
        return self.spec.task


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = mp.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(["automl._isolation_child"])
    return _CONTEXT


def start_server() -> None:
    """Start the forkserver now (it imports Keras in the background) rather than at the first trial."""
    from multiprocessing import forkserver

    _context()
    forkserver.ensure_running()


def save_training_data(data: TrainingData, folder: Path) -> Path:
    """Write the training arrays once per worker; children map them read-only."""
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


def load_training_data(path: str, y_std: float) -> TrainingData:
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}

    def split(name: str) -> Any:
        if name in arrays:
            return arrays[name]
        return {key.split("::", 1)[1]: value for key, value in arrays.items() if key.startswith(f"{name}::")}

    return TrainingData(split("x_train"), arrays["y_train"], split("x_val"), arrays["y_val"], y_std)


def child_main(conn: Any, job: ChildJob) -> None:
    """Runs in the child: train, save the best-epoch model, send the epoch log back."""
    import keras

    from automl.backend import configure
    from automl.hypermodel import family_for
    from automl.training import artifact_sink, train

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means
    try:
        configure(job.threads)
        keras.utils.set_random_seed(job.seed)
        data = load_training_data(job.data_path, job.y_std)

        def report(epoch: int, value: float) -> bool:
            conn.send(("epoch", epoch, value))
            return bool(conn.recv())

        def send_image(name: str, image: Any) -> None:
            conn.send(("image", name, np.asarray(image)))

        holder = _SpecOnly(job.spec)
        with artifact_sink(send_image):  # the parent logs what the trial draws to the trial's run
            model, log = train(
                family_for(job.family),
                job.params,
                holder,
                data,
                job.epochs,
                job.monitor,
                job.direction,
                report,
                options=job.options,
            )
        if log.best_value is not None and not log.pruned:
            model.save(job.model_path)
        conn.send(("done", log))
    except BaseException as exc:  # everything goes back to the parent, which records the trial
        oom = type(exc).__name__ in ("ResourceExhaustedError", "MemoryError", "XlaRuntimeError") and (
            "memory" in str(exc).lower() or isinstance(exc, MemoryError)
        )
        conn.send(
            ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc(), oom, isinstance(exc, NonFiniteLoss))
        )
    finally:
        conn.close()


def train_in_child(job: ChildJob, report: Reporter | None, on_start: Any = None, on_image: Any = None) -> EpochLog:
    """Train one trial in a child process; ``TrialProcessError`` if it raised, crashed or was killed.

    ``on_image(name, array)`` receives what the trial draws (``log_trial_image``), for the trial's run.
    """
    parent_conn, child_conn = _context().Pipe()
    process = _context().Process(target=child_main, args=(child_conn, job), daemon=True)
    process.start()
    child_conn.close()
    if on_start is not None:
        on_start(process.pid)
    try:
        while True:
            try:
                message = parent_conn.recv()
            except EOFError:
                break
            if message[0] == "epoch":
                parent_conn.send(bool(report(message[1], message[2])) if report else False)
            elif message[0] == "image":
                if on_image is not None:
                    on_image(message[1], message[2])
            elif message[0] == "done":
                process.join(timeout=60)
                return message[1]
            elif message[0] == "error":
                process.join(timeout=60)
                _, text, child_traceback, oom, non_finite = message
                if non_finite:
                    raise NonFiniteLoss(text.split(": ", 1)[-1])
                raise TrialProcessError(f"{text}\n--- in the trial process ---\n{child_traceback}", oom=oom)
    except BaseException:
        if process.is_alive():
            process.terminate()
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        raise
    finally:
        parent_conn.close()
    process.join(timeout=60)
    code = process.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (the kernel's out-of-memory killer sends SIGKILL)" if -code == signal.SIGKILL else ""
        raise TrialProcessError(f"trial process was killed by {name}{hint}", oom=-code == signal.SIGKILL)
    raise TrialProcessError(f"trial process exited with code {code} before reporting a result")


def scratch_dir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="trial-", dir=root))
