"""One trial: suggest -> build -> fit with pruning -> the objective value, tracked as one child run."""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import keras
import optuna

from automl.data import Dataset
from automl.families import Family
from automl.spaces import Space
from automl.training import TrainingData, train
from automl.workers import worker_id

logger = logging.getLogger(__name__)


class TrialTracker(Protocol):
    def start_trial(self, parent_id: str, number: int, params: dict[str, Any], tags: dict[str, str]) -> str: ...
    def finish_trial(
        self,
        run_id: str,
        state: str,
        history: list[dict[str, float]],
        summary: dict[str, float] | None = ...,
        tags: dict[str, str] | None = ...,
        error: str | None = ...,
        run_status: str | None = ...,
    ) -> None: ...


@dataclass
class TrialSettings:
    epochs: int
    seed: int
    metric: str
    direction: str
    fixed: dict[str, Any]
    checkpoint_dir: Path


def trial_seed(seed: int, number: int) -> int:
    """Each trial's own seed, so any trial can be retrained exactly."""
    return seed * 100_003 + number


class Objective:
    """Callable for ``study.optimize``; the family is looked up by the caller, never imported here."""

    def __init__(
        self,
        family: Family,
        space: Space,
        dataset: Dataset,
        settings: TrialSettings,
        tracker: TrialTracker,
        parent_run_id: str,
    ) -> None:
        self.family = family
        self.space = space
        self.dataset = dataset
        self.settings = settings
        self.tracker = tracker
        self.parent_run_id = parent_run_id
        self.data = TrainingData.from_dataset(dataset)  # once per worker, not once per trial
        self.monitor = f"val_{settings.metric}"
        self._checkpoint: Path | None = None

    def params_for(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        params = self.space.suggest(trial, self.dataset.task, self.settings.fixed)
        return {"family": self.family.name, **params}

    def __call__(self, trial: optuna.Trial) -> float:
        params = self.params_for(trial)
        seed = trial_seed(self.settings.seed, trial.number)
        trial.set_user_attr("worker", worker_id())
        trial.set_user_attr("params", params)
        trial.set_user_attr("seed", seed)
        run_id = self.tracker.start_trial(
            self.parent_run_id, trial.number, params, {"automl.seed": str(seed), "automl.family": self.family.name}
        )
        trial.set_user_attr("mlflow_run_id", run_id)
        keras.utils.set_random_seed(seed)

        def report(epoch: int, value: float) -> bool:
            trial.report(value, epoch)
            return trial.should_prune()

        log = None
        start = time.perf_counter()
        try:
            model, log = train(
                self.family,
                params,
                self.dataset,
                self.data,
                self.settings.epochs,
                self.monitor,
                self.settings.direction,
                report,
            )
            summary = {"fit_seconds": log.fit_seconds, "trial_seconds": time.perf_counter() - start}
            trial.set_user_attr("fit_seconds", log.fit_seconds)
            if log.pruned:
                self.tracker.finish_trial(run_id, "PRUNED", log.history, summary)
                raise optuna.TrialPruned(f"pruned at epoch {len(log.history) - 1}")
            if log.best_value is None:
                raise RuntimeError(f"no finite value of {self.monitor} in any epoch")
            trial.set_user_attr("best_epoch", log.best_epoch)
            trial.set_user_attr("history", log.history)
            summary[f"best_{self.monitor}"] = log.best_value
            summary["best_epoch"] = float(log.best_epoch or 0)
            self._keep_if_best(trial, model, log.best_value)
            self.tracker.finish_trial(run_id, "COMPLETE", log.history, summary)
            return log.best_value
        except optuna.TrialPruned:
            raise
        except BaseException as exc:
            text = traceback.format_exc()
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
            trial.set_user_attr("traceback", text[-8000:])
            interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
            self.tracker.finish_trial(
                run_id, "FAIL", log.history if log else [], error=text, run_status="KILLED" if interrupted else None
            )
            raise
        finally:
            keras.utils.clear_session()

    def _keep_if_best(self, trial: optuna.Trial, model: keras.Model, value: float) -> None:
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
        model.save(path)
        trial.set_user_attr("checkpoint", str(path))
        if self._checkpoint is not None and self._checkpoint != path:
            self._checkpoint.unlink(missing_ok=True)
        self._checkpoint = path
