"""The pool executor's trial process, driven directly: what it reports before the fit, and the model it writes
after the trial's result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import optuna
import pytest

from automl.data import load_dataset
from automl.execution import PoolExecutor, TrainJob
from automl.execution.pool import _PendingModel
from automl.execution.worker import save_model
from automl.spaces import load_default_space
from automl.training import TrainingData


@pytest.fixture(scope="module")
def wine() -> Any:
    return load_dataset("demo:wine")


def _params(dataset: Any) -> dict[str, Any]:
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    params = load_default_space("mlp").suggest(trial, dataset.task, kind=dataset.spec.kind, n_train=100)
    return {**params, "optimizer": "adam", "learning_rate": 3e-3, "batch_size": 16}


def test_the_trial_process_reports_what_the_model_runs_with_before_it_trains_and_writes_a_kept_model_after(
    wine: Any, tmp_path: Path
) -> None:
    data = TrainingData.from_dataset(wine)
    pool = PoolExecutor(data, wine.spec, tmp_path / "scratch")
    events: list[tuple[str, Any]] = []
    landed: list[Path] = []
    try:
        job = TrainJob.of("mlp", _params(wine), pool.data, 2, "val_accuracy", "maximize", 7)
        result = pool.run(
            job,
            lambda epoch, value: bool(events.append(("epoch", epoch))),
            on_built=lambda log: events.append(("built", (log.dtype_policies, log.deterministic, log.threads))),
        )
        assert events[0] == ("built", (["float32"], False, result.log.threads)), events
        assert events[1:] == [("epoch", 0), ("epoch", 1)]
        assert result.keep is not None and result.discard is not None, "no incumbent: the model may be kept"
        kept = tmp_path / "kept" / "best.keras"
        kept.parent.mkdir()
        result.keep(kept, lambda: landed.append(kept))
        result.discard()  # what the objective does for every result: a no-op for a kept one

        # a second trial that cannot beat the incumbent: its model is not written at all
        worse = pool.run(TrainJob.of("mlp", _params(wine), pool.data, 1, "val_accuracy", "maximize", 8, incumbent=2.0))
        assert worse.keep is None and worse.discard is None
    finally:
        pool.close()  # waits for the last model to be written
    assert landed == [kept], "the model landed once, where it was kept"
    model = keras.saving.load_model(kept)
    assert model.predict(np.asarray(data.x_val[:3]), verbose=0).shape == (3, 3)
    assert not list((tmp_path / "scratch").iterdir()), "nothing left in scratch: no model, no arrays"


@pytest.mark.parametrize("written_first", [True, False], ids=["written-first", "chosen-first"])
def test_a_pending_model_is_moved_or_removed_once_its_write_and_the_choice_are_both_known(
    tmp_path: Path, written_first: bool
) -> None:
    def pending(name: str) -> _PendingModel:
        scratch = tmp_path / f"{name}.keras"
        scratch.write_bytes(b"model")
        return _PendingModel(scratch)

    kept, dropped, failed = pending("kept"), pending("dropped"), pending("failed")
    calls: list[str] = []
    target = tmp_path / "checkpoint.keras"
    if written_first:
        for model in (kept, dropped):
            model.written(None)
        failed.written("OSError: disk full")
    kept.keep(target, lambda: calls.append("kept"))
    dropped.discard()
    failed.keep(tmp_path / "never.keras", lambda: calls.append("failed"))
    assert calls == (["kept"] if written_first else [])
    if not written_first:
        assert kept.scratch.is_file() and not target.exists(), "nothing moves before the write is done"
        for model in (kept, dropped):
            model.written(None)
        failed.written("OSError: disk full")
    assert calls == ["kept"], "then() runs once, for the model that was written and kept"
    assert target.read_bytes() == b"model"
    assert not any(p.scratch.exists() for p in (kept, dropped, failed))
    assert not (tmp_path / "never.keras").exists()


def test_a_model_is_written_in_one_step_or_not_at_all(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = tmp_path / "model.keras"
    assert save_model(model, str(path)) is None and path.is_file()
    assert keras.saving.load_model(path).count_params() == 8
    missing = tmp_path / "no-such-folder" / "model.keras"
    error = save_model(model, str(missing))
    assert error is not None and "no-such-folder" in error
    assert not missing.parent.exists() or not list(missing.parent.iterdir())
