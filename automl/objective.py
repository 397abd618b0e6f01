"""One trial: suggest -> build -> fit with pruning -> the objective value, tracked as one child run."""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from automl import interrupts
from automl.data import Dataset
from automl.execution import Executor, TrainJob, TrainResult, TrialProcessError, open_executor
from automl.families import Family
from automl.provenance import provenance_tags
from automl.record import monitor_of, read_trial, write_trial
from automl.spaces import SearchSpace
from automl.tracking_interface import TrialTracker
from automl.training import RunOptions, TrainingData
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
    threads: int | None = None  # CPU threads of the process that trains (None: the backend's default)
    worker_max_trials: int = 0  # a trial process is replaced after this many trials (0: never)
    worker_max_rss_growth_mb: float = 0.0  # ... or once its RSS grew this much since its first trial (0: never)
    devices: tuple[str | None, ...] = (None,)  # one trial slot each (--workers with --isolation process)

    def job(self, family: str, params: dict[str, Any], data: Any, monitor: str, seed: int, **more: Any) -> TrainJob:
        """One fit of ``params`` with these settings."""
        return TrainJob.of(
            family, params, data, self.epochs, monitor, self.direction, seed, self.options, threads=self.threads, **more
        )


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
        executor: Executor | None = None,
    ) -> None:
        """``executor`` runs the fits (the caller closes it); None: one of ``settings.isolation``, closed by
        ``close()``."""
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
        self._owns_executor = executor is None
        self.executor = executor or open_executor(
            settings.isolation,
            family,
            dataset,
            self.data,
            settings.checkpoint_dir / "scratch",
            settings.worker_max_trials,
            settings.worker_max_rss_growth_mb,
            settings.devices,
        )
        self._keeping = threading.RLock()  # trials of several slots may finish at once
        # a finished trial's run is closed (its epochs logged, its state set) while the next trial starts
        self._closing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="automl-close-run")
        self._closes: list[Future[None]] = []
        self._to_close: list[Callable[[], None]] = []  # finished runs, closed once the next fit is on its way
        self._closes_lock = threading.Lock()  # several trial slots finish trials
        self._kept_value: float | None = None

    def close(self) -> None:
        """Close the finished trials' runs; stop the trial processes of an executor this objective opened."""
        try:
            self.flush()
        finally:
            self._closing.shutdown(wait=True)
            if self._owns_executor:
                self.executor.close()

    def flush(self) -> None:
        """Wait until every finished trial's run is closed; one that could not be is a warning, not an error."""
        self._start_closing()
        with self._closes_lock:
            closes, self._closes = self._closes, []
        for done in closes:
            try:
                done.result()
            except Exception as exc:  # the trial is recorded in the study; only its run's last writes are missing
                logger.warning("a trial's MLflow run could not be closed: %s", exc)

    def _close_run_later(self, run_id: str, state: str, log: Any, summary: dict[str, float]) -> None:
        close = functools.partial(self.tracker.finish_trial, run_id, state, list(log.history), summary)
        with self._closes_lock:
            self._to_close.append(close)

    def _start_closing(self) -> None:
        """Hand the finished runs to the closing thread. Called once the next fit is on its way (or by ``flush``),
        so their MLflow writes do not hold the GIL while the search tells the study and asks for the next trial."""
        with self._closes_lock:  # the closed ones that failed stay, for flush() to report
            pending, self._to_close = self._to_close, []
            started = [self._closing.submit(close) for close in pending]
            self._closes = [f for f in self._closes if not f.done() or f.exception() is not None] + started

    def params_for(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        params = self.space.suggest(
            trial, self.dataset.task, self.settings.fixed, kind=self.dataset.spec.kind, n_train=len(self.data.y_train)
        )
        return {"family": self.family.name, **params}

    def __call__(self, trial: optuna.Trial) -> float:
        params = self.params_for(trial)
        seed = trial_seed(self.settings.seed, trial.number)
        tags = {
            "automl.seed": str(seed),
            "automl.family": self.family.name,
            "automl.origin": trial_origin(trial),
            **self.provenance,
        }
        run = _TrialRun(lambda: self._open_run(trial, params, seed, tags))

        pruned_at: list[int] = []  # the epoch the pruner stopped the trial at
        prunes = not isinstance(trial.study.pruner, optuna.pruners.NopPruner)  # else no trial read per epoch

        def report(epoch: int, value: float) -> bool:
            if interrupts.requested():  # raised where something (a database driver, TensorFlow) swallowed it
                raise KeyboardInterrupt
            if pruned_at:  # an epoch a trial process trained before it read the answer: not the study's
                return True
            if self.on_epoch is not None:
                self.on_epoch(trial.number, epoch, self.settings.epochs, value)
            trial.report(value, epoch)
            if prunes and trial.should_prune():
                pruned_at.append(epoch)
                return True
            return False

        log = None
        start = time.perf_counter()
        results: list[TrainResult] = []
        try:
            result = self._execute(trial, params, seed, run, report, results)
            log = result.log
            if self.settings.executions > 1 and not log.pruned and log.best_value is not None:
                result = self._more_executions(trial, params, seed, run, result, results)
                log = result.log
            if self.family.name.startswith("hypermodel:"):
                write_trial(trial, params=params)  # a hypermodel's fit() may have drawn more params
            summary = {"fit_seconds": log.fit_seconds, "trial_seconds": time.perf_counter() - start}
            write_trial(trial, fit_seconds=log.fit_seconds)
            if log.pruned:
                if pruned_at:  # the epochs up to the one the study was told, as a waiting reporter gives
                    log = dataclasses.replace(log, history=log.history[: pruned_at[0] + 1])
                self._close_run_later(run.id, "PRUNED", log, summary)
                raise optuna.TrialPruned(f"pruned at epoch {len(log.history) - 1}")
            if log.best_value is None:
                raise RuntimeError(f"no finite value of {self.monitor} in any epoch")
            write_trial(trial, best_epoch=log.best_epoch, history=log.history)
            summary[f"best_{self.monitor}"] = log.best_value
            summary["best_epoch"] = float(log.best_epoch or 0)
            self._keep_if_best(trial, result, log.best_value)
            self._close_run_later(run.id, "COMPLETE", log, summary)
            return log.best_value
        except optuna.TrialPruned:
            raise
        except BaseException as exc:
            text = traceback.format_exc()
            write_trial(trial, error=f"{type(exc).__name__}: {exc}"[:2000], traceback=text[-8000:])
            interrupted = isinstance(exc, KeyboardInterrupt | SystemExit) or interrupts.requested()
            self.tracker.finish_trial(
                run.id, "FAIL", log.history if log else [], error=text, run_status="KILLED" if interrupted else None
            )
            if interrupted and not isinstance(exc, KeyboardInterrupt | SystemExit):
                raise KeyboardInterrupt from exc  # TensorFlow wrapped the interrupt; it must still stop the search
            raise
        finally:
            for done in results:  # a trial process's saved model, unless it became the checkpoint
                if done.discard is not None:
                    done.discard()

    def _open_run(self, trial: optuna.Trial, params: dict[str, Any], seed: int, tags: dict[str, str]) -> str:
        """The trial's record and its MLflow run, written while the executor starts the fit."""
        write_trial(trial, worker=worker_id(), params=params, seed=seed, epochs=self.settings.epochs)
        run_id = self.tracker.start_trial(self.parent_run_id, trial.number, params, tags)
        write_trial(trial, mlflow_run_id=run_id)
        return run_id

    def _incumbent(self, trial: optuna.Trial) -> float | None:
        """The study's best value so far: a fit that does not beat it need not save its model."""
        if self.settings.executions > 1:
            return None  # the trial's value is a mean over its fits: any fit's model may become the checkpoint
        try:
            return float(trial.study.best_value)
        except ValueError:
            return None

    def _execute(
        self,
        trial: optuna.Trial,
        params: dict[str, Any],
        seed: int,
        run: _TrialRun,
        report: Any,
        results: list[TrainResult],
    ) -> TrainResult:
        """One fit of this trial's model by the executor; with ``oom_retry``, a fit killed for memory runs once
        more at half the batch size."""
        job = self.settings.job(
            self.family.name, params, self.executor.data, self.monitor, seed, incumbent=self._incumbent(trial)
        )

        def started(pid: int) -> None:  # the job is on its way: the record and the run are written meanwhile
            if self.settings.isolation == "process":
                write_trial(trial, child_pid=pid)
            run.open()
            self._start_closing()

        def on_image(name: str, image: Any) -> None:
            self.tracker.log_image(run.id, image, name)

        def built(log: Any) -> None:  # known before the fit: recorded while the model trains
            write_trial(
                trial, dtype_policies=log.dtype_policies, deterministic_ops=log.deterministic, threads=log.threads
            )

        try:
            result = self.executor.run(job, report, on_image, started, built)
        except TrialProcessError as exc:
            batch = int(params.get("batch_size", 0) or 0)
            if not (exc.oom and self.settings.oom_retry and batch > 1):
                raise
            write_trial(trial, oom_retry={"batch_size": batch // 2, "reason": str(exc).splitlines()[0]})
            job = dataclasses.replace(job, params={**params, "batch_size": batch // 2})
            result = self.executor.run(job, report, on_image, started, built)
        results.append(result)
        return result

    def _more_executions(
        self,
        trial: optuna.Trial,
        params: dict[str, Any],
        seed: int,
        run: _TrialRun,
        first: TrainResult,
        results: list[TrainResult],
    ) -> TrainResult:
        """Fit the trial ``executions - 1`` more times; the log's value becomes the mean, the best model is kept.

        Only the first fit reports to the pruner: a later one restarting at epoch 0 would report out of order.
        """
        assert first.log.best_value is not None
        values = [float(first.log.best_value)]
        best_value, best, fit_seconds = values[0], first, first.log.fit_seconds
        maximize = self.settings.direction == "maximize"
        for execution in range(1, self.settings.executions):
            result = self._execute(trial, params, seed + execution, run, None, results)
            log = result.log
            fit_seconds += log.fit_seconds
            if log.best_value is None:
                raise RuntimeError(f"execution {execution + 1}: no finite value of {self.monitor} in any epoch")
            values.append(float(log.best_value))
            if (log.best_value > best_value) if maximize else (log.best_value < best_value):
                best_value, best = float(log.best_value), result
        write_trial(trial, execution_values=values)
        mean = float(sum(values) / len(values))
        return dataclasses.replace(best, log=dataclasses.replace(first.log, best_value=mean, fit_seconds=fit_seconds))

    def _keep_if_best(self, trial: optuna.Trial, result: TrainResult, value: float) -> None:
        """Save this trial's best-epoch model if it beats every finished trial of the study."""
        with self._keeping:
            self._keep_locked(trial, result, value)

    def _keep_locked(self, trial: optuna.Trial, result: TrainResult, value: float) -> None:
        try:
            best = trial.study.best_value
        except ValueError:
            best = None
        maximize = self.settings.direction == "maximize"
        if self._kept_value is not None:  # a trial of another slot kept its model but is not told yet
            best = self._kept_value if best is None else (max if maximize else min)(best, self._kept_value)
        better = best is None or (value > best if maximize else value < best)
        if not better or result.keep is None:
            return
        self.settings.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        path = self.settings.checkpoint_dir / f"trial-{trial.number}.keras"
        old, old_value = self._checkpoint, self._kept_value
        self._checkpoint, self._kept_value = path, value
        try:  # a trial process may still be writing the model: it lands at ``path`` later, then the old one goes
            result.keep(path, functools.partial(self._tidy_checkpoints, old, path))
        except BaseException:
            self._checkpoint, self._kept_value = old, old_value
            raise
        write_trial(trial, checkpoint=str(path))

    def _tidy_checkpoints(self, *paths: Path | None) -> None:
        """Once a kept model landed: remove the checkpoint it replaced, or itself if a better one came meanwhile."""
        with self._keeping:
            for path in paths:
                if path is not None and path != self._checkpoint:
                    path.unlink(missing_ok=True)


class _TrialRun:
    """A trial's MLflow run, opened once the executor has the job (or when first needed, e.g. to record a failure
    before that), so that opening it overlaps the model's build in a trial process."""

    def __init__(self, start: Callable[[], str]) -> None:
        self._start = start
        self._id: str | None = None

    def open(self) -> None:
        if self._id is None:
            self._id = self._start()

    @property
    def id(self) -> str:
        self.open()
        assert self._id is not None
        return self._id
