"""How a trial's fit runs: one ``Executor`` interface over in-process training and a pool of trial processes.

The objective builds one ``TrainJob`` per fit and hands it to the search's executor (``open_executor``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from automl.execution.inprocess import InProcessExecutor
from automl.execution.job import DataRef, Executor, TrainJob, TrainResult, TrialProcessError, train_job
from automl.execution.pool import PoolExecutor, start_server, stop_server
from automl.training import DataShape, TrainingData


def open_executor(
    isolation: str,
    family: Any,
    shape: DataShape,
    data: TrainingData,
    scratch: Path,
    max_trials: int = 0,
    max_rss_growth_mb: float = 0.0,
    devices: Sequence[str | None] = (None,),
) -> Executor:
    """The executor of ``--isolation``: ``process`` (the pool: one long-lived trial process per slot of
    ``devices``) or ``none``.

    A trial process is replaced after ``max_trials`` trials, or once its RSS grew by ``max_rss_growth_mb``
    since its first trial (0: no limit).
    """
    if isolation == "process":
        return PoolExecutor(
            data, shape.spec, scratch, devices, max_trials=max_trials, max_rss_growth_mb=max_rss_growth_mb
        )
    return InProcessExecutor(family, shape, data)


__all__ = [
    "DataRef",
    "Executor",
    "InProcessExecutor",
    "PoolExecutor",
    "TrainJob",
    "TrainResult",
    "TrialProcessError",
    "open_executor",
    "start_server",
    "stop_server",
    "train_job",
]
