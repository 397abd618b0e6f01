"""The in-process executor: each trial fits in the search's own process (``--isolation none``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from automl.execution.job import BuiltHook, DataRef, ImageSink, KeptHook, TrainJob, TrainResult, train_job
from automl.training import DataShape, Reporter, TrainingData, artifact_sink


class InProcessExecutor:
    """Trains with the family object and the arrays this process already holds (a hypermodel that draws params
    in ``fit()`` must train here: only this process can write them to the trial)."""

    def __init__(self, family: object, shape: DataShape, data: TrainingData) -> None:
        self.family = family
        self.shape = shape
        self.arrays = data
        self._data = DataRef("", shape.spec, data.y_std)

    @property
    def data(self) -> DataRef:
        return self._data

    def run(
        self,
        job: TrainJob,
        report: Reporter | None = None,
        on_image: ImageSink | None = None,
        on_start: Callable[[int], None] | None = None,
        on_built: BuiltHook | None = None,
    ) -> TrainResult:
        import keras

        keras.utils.clear_session(free_memory=False)  # the last trial's graph; this also resets the dtype policy
        if on_start is not None:
            on_start(os.getpid())
        with artifact_sink(on_image or (lambda name, image: None)):
            model, log = train_job(job, self.family, self.shape, self.arrays, report, on_built)
        kept = log.best_value is not None and not log.pruned and job.beats_incumbent(log.best_value)
        return TrainResult(log, _saver(model) if kept else None, os.getpid())

    def close(self) -> None:
        import keras

        keras.utils.clear_session(free_memory=False)


def _saver(model: Any) -> Callable[[Path, KeptHook | None], None]:
    def keep(path: Path, then: KeptHook | None = None) -> None:
        model.save(path)
        if then is not None:
            then()

    return keep
