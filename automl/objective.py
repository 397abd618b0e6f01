"""One trial: suggest -> build -> fit with pruning -> the objective value, tracked as one child run."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import optuna

from automl import interrupts
from automl.data import Dataset
from automl.families import Family
from automl.provenance import provenance_tags
from automl.record import monitor_of, read_trial, write_trial
from automl.spaces import SearchSpace
from automl.tracking_interface import TrialTracker
from automl.training import EpochLog, RunOptions, TrainingData, artifact_sink, train
from automl.workers import worker_id

logger = logging.getLogger(__name__)


EpochListener = Callable[[int, int, int, float], None]  # (trial number, epoch, epochs, objective value)


@dataclass
class TrialSettings:
    epochs: int
    seed: int
    metric: str
    direction: str
    fixed: dict[str, Any]
    checkpoint_dir: Path
    isolation: str = "none"
    oom_retry: bool = False
    options: RunOptions = field(default_factory=RunOptions)
    executions: int = 1  # fits per trial (each with its own seed); the trial's value is their mean
    trust_model_code: bool = False  # checkpoints are loaded with Keras safe_mode off (``--trust-model-code``)


def trial_origin(trial: optuna.trial.BaseTrial) -> str:
    """``start`` for a space's starting configuration (enqueued), ``search`` for a sampler's draw."""
    return read_trial(trial).origin or "search"


def trial_seed(seed: int, number: int) -> int:
    """Each trial's own seed, so any trial can be retrained exactly."""
    return seed * 100_003 + number


class Objective:
    """Callable for ``study.optimize``; the family is looked up by the caller, never imported here."""

    def __init__(
        self,
        family: Family,
        space: SearchSpace,
        dataset: Dataset,
        settings: TrialSettings,
        tracker: TrialTracker,
        parent_run_id: str,
        on_epoch: EpochListener | None = None,
    ) -> None:
        self.on_epoch = on_epoch
        self.family = family
        self.space = space
        self.dataset = dataset
        self.settings = settings
        self.tracker = tracker
        self.parent_run_id = parent_run_id
        self.data = TrainingData.from_dataset(dataset)  # once per worker, not once per trial
        self.monitor = monitor_of(settings.metric)
        self.provenance = provenance_tags(space.sha256, str(dataset.description.get("sha256", "")))
        self._checkpoint: Path | None = None
        self._data_path: Path | None = None
        self._pending: Path | None = None

    def params_for(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        params = self.space.suggest(
            trial, self.dataset.task, self.settings.fixed, kind=self.dataset.spec.kind, n_train=len(self.data.y_train)
        )
        return {"family": self.family.name, **params}

    def __call__(self, trial: optuna.Trial) -> float:
        params = self.params_for(trial)
        seed = trial_seed(self.settings.seed, trial.number)
        write_trial(trial, worker=worker_id(), params=params, seed=seed, epochs=self.settings.epochs)
        run_id = self.tracker.start_trial(
            self.parent_run_id,
            trial.number,
            params,
            {
                "automl.seed": str(seed),
                "automl.family": self.family.name,
                "automl.origin": trial_origin(trial),
                **self.provenance,
            },
        )
        write_trial(trial, mlflow_run_id=run_id)
        keras.utils.set_random_seed(seed)

        def report(epoch: int, value: float) -> bool:
            if self.on_epoch is not None:
                self.on_epoch(trial.number, epoch, self.settings.epochs, value)
            trial.report(value, epoch)
            return trial.should_prune()

        log = None
        start = time.perf_counter()
        try:
            log, save = self._execute(trial, params, seed, run_id, report)
            if self.settings.executions > 1 and not log.pruned and log.best_value is not None:
                log, save = self._more_executions(trial, params, seed, run_id, log, save)
            if self.family.name.startswith("hypermodel:"):
                write_trial(trial, params=params)  # a hypermodel's fit() may have drawn more params
            summary = {"fit_seconds": log.fit_seconds, "trial_seconds": time.perf_counter() - start}
            write_trial(
                trial,
                fit_seconds=log.fit_seconds,
                dtype_policies=log.dtype_policies,
                deterministic_ops=log.deterministic,
            )
            if log.pruned:
                self.tracker.finish_trial(run_id, "PRUNED", log.history, summary)
                raise optuna.TrialPruned(f"pruned at epoch {len(log.history) - 1}")
            if log.best_value is None:
                raise RuntimeError(f"no finite value of {self.monitor} in any epoch")
            write_trial(trial, best_epoch=log.best_epoch, history=log.history)
            summary[f"best_{self.monitor}"] = log.best_value
            summary["best_epoch"] = float(log.best_epoch or 0)
            self._keep_if_best(trial, save, log.best_value)
            self.tracker.finish_trial(run_id, "COMPLETE", log.history, summary)
            return log.best_value
        except optuna.TrialPruned:
            raise
        except BaseException as exc:
            text = traceback.format_exc()
            write_trial(trial, error=f"{type(exc).__name__}: {exc}"[:2000], traceback=text[-8000:])
            interrupted = isinstance(exc, KeyboardInterrupt | SystemExit) or interrupts.requested()
            self.tracker.finish_trial(
                run_id, "FAIL", log.history if log else [], error=text, run_status="KILLED" if interrupted else None
            )
            if interrupted and not isinstance(exc, KeyboardInterrupt | SystemExit):
                raise KeyboardInterrupt from exc  # TensorFlow wrapped the interrupt; it must still stop the search
            raise
        finally:
            if self.settings.isolation != "process":
                keras.utils.clear_session(free_memory=False)
            elif self._pending is not None:
                self._pending.unlink(missing_ok=True)  # the child's model, unless it became the checkpoint

    def _execute(
        self, trial: optuna.Trial, params: dict[str, Any], seed: int, run_id: str, report: Any
    ) -> tuple[EpochLog, Callable[[Path], Any]]:
        """One fit of this trial's model: in a child process or here; its epoch log and how to save the model."""
        if self.settings.isolation == "process":
            return self._train_in_child(
                trial, params, seed, report, lambda name, image: self.tracker.log_image(run_id, image, name)
            )
        with artifact_sink(lambda name, image: self.tracker.log_image(run_id, image, name)):
            model, log = train(
                self.family,
                params,
                self.dataset,
                self.data,
                self.settings.epochs,
                self.monitor,
                self.settings.direction,
                report,
                options=self.settings.options,
            )
        return log, model.save

    def _more_executions(
        self,
        trial: optuna.Trial,
        params: dict[str, Any],
        seed: int,
        run_id: str,
        first: EpochLog,
        save: Callable[[Path], Any],
    ) -> tuple[EpochLog, Callable[[Path], Any]]:
        """Fit the trial ``executions - 1`` more times; the log's value becomes the mean, the best model is kept.

        Only the first fit reports to the pruner: a later one restarting at epoch 0 would report out of order.
        """
        assert first.best_value is not None
        values = [float(first.best_value)]
        best_value, best_save, fit_seconds = values[0], save, first.fit_seconds
        maximize = self.settings.direction == "maximize"
        for execution in range(1, self.settings.executions):
            if self.settings.isolation != "process":
                keras.utils.clear_session(free_memory=False)
            keras.utils.set_random_seed(seed + execution)
            log, save = self._execute(trial, params, seed + execution, run_id, None)
            fit_seconds += log.fit_seconds
            if log.best_value is None:
                raise RuntimeError(f"execution {execution + 1}: no finite value of {self.monitor} in any epoch")
            values.append(float(log.best_value))
            if (log.best_value > best_value) if maximize else (log.best_value < best_value):
                best_value, best_save = float(log.best_value), save
        write_trial(trial, execution_values=values)
        mean = float(sum(values) / len(values))
        return dataclasses.replace(first, best_value=mean, fit_seconds=fit_seconds), best_save

    def _train_in_child(
        self, trial: optuna.Trial, params: dict[str, Any], seed: int, report: Any, on_image: Any
    ) -> tuple[EpochLog, Callable[[Path], Any]]:
        """Train in a child process; with ``oom_retry``, a trial killed for memory runs once more at half batch."""
        from automl.isolation import ChildJob, TrialProcessError, save_training_data, train_in_child

        scratch = self.settings.checkpoint_dir / "scratch"
        if self._data_path is None:
            self._data_path = save_training_data(self.data, scratch)
        model_path = scratch / f"trial-{trial.number}-{os.getpid()}.keras"
        self._pending = model_path
        job = ChildJob(
            self.family.name,
            params,
            self.dataset.spec,
            str(self._data_path),
            self.settings.epochs,
            self.monitor,
            self.settings.direction,
            self.data.y_std,
            seed,
            str(model_path),
            None,
            self.settings.options,
        )

        def started(pid: int) -> None:
            write_trial(trial, child_pid=pid)

        try:
            log = train_in_child(job, report, started, on_image)
        except TrialProcessError as exc:
            batch = int(params.get("batch_size", 0) or 0)
            if not (exc.oom and self.settings.oom_retry and batch > 1):
                raise
            job.params = {**params, "batch_size": batch // 2}
            write_trial(trial, oom_retry={"batch_size": batch // 2, "reason": str(exc).splitlines()[0]})
            log = train_in_child(job, report, started, on_image)

        def save(path: Path) -> None:
            shutil.move(str(model_path), str(path))

        return log, save

    def _keep_if_best(self, trial: optuna.Trial, save: Callable[[Path], Any], value: float) -> None:
        """Save this trial's best-epoch model if it beats every finished trial of the study."""
        try:
            best = trial.study.best_value
        except ValueError:
            best = None
        better = best is None or (value > best if self.settings.direction == "maximize" else value < best)
        if not better:
            return
        self.settings.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        path = self.settings.checkpoint_dir / f"trial-{trial.number}.keras"
        save(path)
        write_trial(trial, checkpoint=str(path))
        if self._checkpoint is not None and self._checkpoint != path:
            self._checkpoint.unlink(missing_ok=True)
        self._checkpoint = path
