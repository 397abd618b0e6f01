"""A whole search: validate, load data once, run the Optuna study, register the best model."""

from __future__ import annotations

import dataclasses
import logging
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import optuna

from automl import families
from automl.config import SearchConfig, Store, resolve_store
from automl.data import Dataset, adapt_input, load_dataset, predict_inputs
from automl.errors import AutoMLError, SpaceError
from automl.spaces import Space, load_default_space, load_space
from automl.study import FINISHED, count_finished, get_pruner, get_sampler, load_study, open_storage, open_study

logger = logging.getLogger(__name__)


class ProgressReporter(Protocol):
    """How the CLI (or a notebook) sees a search go by; the library itself never prints."""

    def on_start(self, study: str, total: int, done: int, direction: str, metric: str) -> None: ...
    def on_trial(self, trial: optuna.trial.FrozenTrial, best: float | None, done: int) -> None: ...
    def on_finalize(self, message: str) -> None: ...


@dataclass
class SearchResult:
    """What a search gives back: the best trial, its registered model and the test metrics."""

    study: str
    metric: str
    direction: str
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, Any]
    model_uri: str | None
    champion_uri: str | None
    register_name: str
    test_metrics: dict[str, float]
    states: dict[str, int]
    wall_seconds: float
    fit_seconds: float
    parent_run_id: str
    stopped_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def resolve_space(config: SearchConfig) -> Space:
    space = load_space(config.space) if config.space else load_default_space(config.family)
    if space.family and space.family != config.family and config.space:
        logger.info("space %s was written for family %s; using it with %s", config.space, space.family, config.family)
    return space


def pin_params(space: Space, fixed: dict[str, Any]) -> dict[str, Any]:
    """Typed pinned values: strings (from ``--set``) are parsed against the space."""
    strings = [f"{k}={v}" for k, v in fixed.items() if isinstance(v, str)]
    pinned = space.parse_fixed(strings)
    for name, value in fixed.items():
        if name not in space.params:
            raise SpaceError(f"--set '{name}': unknown param (params: {', '.join(space.params)})")
        pinned.setdefault(name, value)
    return pinned


def check_metric_comparable(space: Space, metric: str, task: str, fixed: dict[str, Any]) -> None:
    """Refuse an objective that depends on a searched loss: MSE and Huber values do not compare."""
    param = space.params.get("loss")
    if metric != "loss" or param is None or "loss" in fixed:
        return
    options = param.extremes(task)
    if len(options) > 1:
        raise AutoMLError(
            f"--metric loss is not comparable across trials while the loss is searched ({', '.join(map(str, options))}); "
            f"pin it with --set loss=... or use another metric"
        )


class _Budget:
    """Stop once the study holds ``target`` finished trials, or after ``max_failures`` failures in a row."""

    def __init__(self, target: int, max_failures: int, progress: ProgressReporter | None) -> None:
        self.target = target
        self.max_failures = max_failures
        self.progress = progress
        self.failures = 0
        self.stopped_reason: str | None = None

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.failures = self.failures + 1 if trial.state == optuna.trial.TrialState.FAIL else 0
        done = count_finished(study)
        if self.progress is not None:
            try:
                best = study.best_value
            except ValueError:
                best = None
            self.progress.on_trial(trial, best, done)
        if self.max_failures and self.failures >= self.max_failures:
            self.stopped_reason = (
                f"stopped after {self.failures} consecutive failed trials "
                f"(last error: {trial.user_attrs.get('error', 'unknown')})"
            )
            study.stop()
        elif done >= self.target:
            study.stop()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C: the running trial is recorded as failed and its run as KILLED."""
    try:
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def search(config: SearchConfig, progress: ProgressReporter | None = None) -> SearchResult:
    """Run (or continue) a search and register its best model; see ``SearchConfig`` for the knobs."""
    started = time.perf_counter()
    store = resolve_store(config.home, config.tracking_uri, config.storage)
    family = families.get(config.family)
    space = resolve_space(config)
    fixed = pin_params(space, dict(config.fixed))
    if config.trials < 1:
        raise AutoMLError(f"--trials must be at least 1 (got {config.trials})")
    if config.epochs < 1:
        raise AutoMLError(f"--epochs must be at least 1 (got {config.epochs})")
    dataset = load_dataset(config.data, **config.data_options())
    family.check_data(dataset.spec.kind, config.data)
    from automl.training import resolve_metric

    metric, direction = resolve_metric(dataset.task, config.metric)
    check_metric_comparable(space, metric, dataset.task, fixed)

    from automl.tracking import Tracker

    store.home.mkdir(parents=True, exist_ok=True)
    tracker = Tracker(store, config.study_name)
    storage = open_storage(store.storage)
    attrs = {
        "family": family.name,
        "metric": metric,
        "task": dataset.task,
        "data": config.data,
        "target": config.target,
        "space_sha256": space.sha256,
        "data_sha256": dataset.description["sha256"],
    }
    # earlier attempts of this study may hold finished trials; the sampler's seed moves on with them
    probe = optuna.create_study(study_name=config.study_name, storage=storage, direction=direction, load_if_exists=True)
    done_before = count_finished(probe)
    study = open_study(
        config.study_name,
        storage,
        direction,
        get_sampler(config.sampler, None if config.seed is None else config.seed + done_before),
        get_pruner(config.pruner, config.epochs),
        attrs,
    )
    config_record = {
        k: v for k, v in dataclasses.asdict(config).items() if k not in ("home", "tracking_uri", "storage")
    }
    study.set_user_attr("config", config_record)
    study.set_user_attr("space_text", space.text)
    target = done_before + config.trials
    study.set_user_attr("budget", target)

    parent_id = tracker.attach_parent(
        study.user_attrs.get("mlflow_parent_run_id") if _run_exists(tracker, study) else None,
        {"automl.family": family.name, "automl.metric": metric, "automl.direction": direction},
    )
    study.set_user_attr("mlflow_parent_run_id", parent_id)
    tracker.log_study_inputs(parent_id, space.text, dataset.description)
    return _run(
        config,
        store,
        study,
        tracker,
        parent_id,
        family,
        space,
        fixed,
        dataset,
        metric,
        direction,
        target,
        done_before,
        started,
        progress,
    )


def resume(
    study_name: str,
    home: str | None = None,
    tracking_uri: str | None = None,
    storage: str | None = None,
    progress: ProgressReporter | None = None,
    **overrides: Any,
) -> SearchResult:
    """Continue a study to the budget its last search asked for, with the settings it recorded."""
    store = resolve_store(home, tracking_uri, storage)
    study = load_study(study_name, store.storage)
    record = dict(study.user_attrs.get("config") or {})
    if not record:
        raise AutoMLError(f"study '{study_name}' was not created by automl search (no recorded config)")
    budget = int(study.user_attrs.get("budget", 0))
    remaining = budget - count_finished(study)
    trials = overrides.pop("trials", None)
    if trials is None:
        if remaining <= 0:
            raise AutoMLError(
                f"study '{study_name}' already has its {budget} finished trials; pass --trials N to run more"
            )
        trials = remaining
    record.update({k: v for k, v in overrides.items() if v is not None})
    record.update(trials=trials, study=study_name, home=home, tracking_uri=tracking_uri, storage=storage)
    if "space_text" in study.user_attrs:
        # the space the study was started with, even if the shipped default changed since
        path = store.home / "spaces" / f"{study_name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(study.user_attrs["space_text"], encoding="utf-8")
        record["space"] = str(path)
    config = SearchConfig(**record)
    return search(config, progress)


def _run_exists(tracker: Any, study: optuna.Study) -> bool:
    run_id = study.user_attrs.get("mlflow_parent_run_id")
    if not run_id:
        return False
    try:
        run = tracker.client.get_run(run_id)
    except Exception:  # a run from another tracking store
        return False
    return str(run.info.experiment_id) == tracker.experiment_id


def _run(
    config: SearchConfig,
    store: Store,
    study: optuna.Study,
    tracker: Any,
    parent_id: str,
    family: families.Family,
    space: Space,
    fixed: dict[str, Any],
    dataset: Dataset,
    metric: str,
    direction: str,
    target: int,
    done_before: int,
    started: float,
    progress: ProgressReporter | None,
) -> SearchResult:
    from automl.objective import Objective, TrialSettings

    settings = TrialSettings(
        epochs=config.epochs,
        seed=config.seed,
        metric=metric,
        direction=direction,
        fixed=fixed,
        checkpoint_dir=store.checkpoints_dir / config.study_name,
    )
    objective = Objective(family, space, dataset, settings, tracker, parent_id)
    budget = _Budget(target, config.max_failures, progress)
    if progress is not None:
        progress.on_start(config.study_name, target, done_before, direction, metric)
    try:
        with _sigterm_as_interrupt():
            study.optimize(
                objective,
                timeout=config.timeout,
                callbacks=[budget],
                catch=(Exception,),
                gc_after_trial=False,
            )
    except KeyboardInterrupt:
        tracker.finish_study(parent_id, {}, {"automl.stopped": "interrupted"}, status="KILLED")
        raise
    return finalize(
        config, study, tracker, parent_id, family, dataset, settings, budget.stopped_reason, started, progress
    )


def finalize(
    config: SearchConfig,
    study: optuna.Study,
    tracker: Any,
    parent_id: str,
    family: families.Family,
    dataset: Dataset,
    settings: Any,
    stopped_reason: str | None,
    started: float,
    progress: ProgressReporter | None = None,
) -> SearchResult:
    """Register the best trial's model, test it once on the test split, close the parent run."""
    trials = study.get_trials(deepcopy=False)
    states = {s.name: sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
    fit_seconds = float(sum(t.user_attrs.get("fit_seconds", 0.0) for t in trials))
    register_name = config.register_name or config.study_name
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        tracker.finish_study(parent_id, {}, {"automl.stopped": stopped_reason or "no trial completed"}, "FAILED")
        return SearchResult(
            config.study_name,
            settings.metric,
            settings.direction,
            None,
            None,
            {},
            None,
            None,
            register_name,
            {},
            states,
            time.perf_counter() - started,
            fit_seconds,
            parent_id,
            stopped_reason or "no trial completed",
        )
    best = study.best_trial
    if progress is not None:
        progress.on_finalize(f"registering trial {best.number} as {register_name}@champion")
    core, source = best_model(best, family, dataset, settings)
    from automl.export import export_model

    exported = export_model(core, dataset)
    test_metrics = evaluate(exported, dataset)
    metadata = {**dataset.metadata, "study": config.study_name, "trial": best.number, "weights": source}
    model_uri, _version = tracker.log_best_model(parent_id, exported, metadata, dataset.raw_example, register_name)
    study.set_user_attr("model_uri", model_uri)
    study.set_user_attr("register_name", register_name)
    study.set_user_attr("test_metrics", test_metrics)
    tracker.finish_study(
        parent_id,
        {"best_value": best.value, "best_trial_number": best.number, **test_metrics},
        {
            "automl.best_trial": best.number,
            "automl.model_uri": model_uri,
            "automl.best_weights": source,
            **({"automl.stopped": stopped_reason} if stopped_reason else {}),
        },
    )
    return SearchResult(
        study=config.study_name,
        metric=settings.metric,
        direction=settings.direction,
        best_trial=best.number,
        best_value=best.value,
        best_params=dict(best.user_attrs.get("params", best.params)),
        model_uri=model_uri,
        champion_uri=f"models:/{register_name}@champion",
        register_name=register_name,
        test_metrics=test_metrics,
        states=states,
        wall_seconds=time.perf_counter() - started,
        fit_seconds=fit_seconds,
        parent_run_id=parent_id,
        stopped_reason=stopped_reason,
    )


def best_model(
    best: optuna.trial.FrozenTrial, family: families.Family, dataset: Dataset, settings: Any
) -> tuple[Any, str]:
    """The best trial's network at its best epoch: its checkpoint, else retrained with its seed."""
    from pathlib import Path

    from automl.export import load_keras_file

    path = best.user_attrs.get("checkpoint")
    if path and Path(path).is_file():
        return load_keras_file(path), "checkpoint"
    import keras

    from automl.training import TrainingData, train

    logger.info("trial %s has no checkpoint here; retraining it with its seed", best.number)
    keras.utils.set_random_seed(int(best.user_attrs.get("seed", settings.seed)))
    params = dict(best.user_attrs.get("params") or best.params)
    model, _ = train(
        family,
        params,
        dataset,
        TrainingData.from_dataset(dataset),
        settings.epochs,
        f"val_{settings.metric}",
        settings.direction,
    )
    return model, "retrained"


def evaluate(exported: Any, dataset: Dataset) -> dict[str, float]:
    """Test-split metrics of the exported raw-input model, in the original units."""
    outputs = predict_inputs(exported, adapt_input(dataset.metadata, dataset.raw_test))
    y = dataset.y_test
    if dataset.task == "classification":
        probs = np.clip(outputs, 1e-7, 1.0)
        return {
            "test_accuracy": float(np.mean(np.argmax(outputs, axis=-1) == y)),
            "test_log_loss": float(-np.mean(np.log(probs[np.arange(len(y)), y]))),
        }
    pred = outputs.reshape(len(y), -1)[:, 0] if outputs.ndim > 1 else outputs
    err = pred - y.reshape(len(y), -1)[:, 0]
    return {"test_rmse": float(np.sqrt(np.mean(err**2))), "test_mae": float(np.mean(np.abs(err)))}


def study_trials(
    study_name: str, home: str | None = None, storage: str | None = None
) -> list[optuna.trial.FrozenTrial]:
    store = resolve_store(home, None, storage)
    return load_study(study_name, store.storage).get_trials(deepcopy=False)


__all__ = ["FINISHED", "ProgressReporter", "SearchResult", "resume", "search"]
