"""A whole search: validate, load data once, run the Optuna study, register the best model."""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import optuna

from automl import families, interrupts
from automl.config import SearchConfig, Store, resolve_store
from automl.data import Dataset, adapt_input, load_dataset, predict_inputs
from automl.errors import AutoMLError, StoreError
from automl.interrupts import stop_on_signals
from automl.record import RegisteredModel, read_study, read_trial, trial_params, update_study
from automl.spaces import SearchSpace, pin_params, space_for
from automl.sqlite_tuning import check_readable
from automl.study import (
    FINISHED,
    best_trial,
    count_finished,
    enqueue_starts,
    get_pruner,
    get_sampler,
    load_study,
    open_storage,
    open_study,
)
from automl.tracking_interface import StudyTracker

if TYPE_CHECKING:  # imported where they are used: Keras and MLflow load only once a search needs them
    from automl.objective import TrialSettings

logger = logging.getLogger(__name__)


class ProgressReporter(Protocol):
    """How the CLI (or a notebook) sees a search go by; the library itself never prints.

    A reporter may also have ``on_epoch(trial, epoch, epochs, value)``: each epoch of the running trial.
    """

    def on_start(self, study: str, total: int, done: int, direction: str, metric: str) -> None: ...
    def on_progress(self, done: int, best: float | None, last: str) -> None: ...
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


def check_stores(config: SearchConfig) -> Store:
    """The cheap checks of where a search will write, before Keras, data or lint: one line each, in seconds."""
    store = resolve_store(config.home, config.tracking_uri, config.storage)
    check_writable(store.home)
    stores = ((store.tracking_uri, "MLflow store"),) if config.tracking else ()
    for uri, what in (*stores, (store.storage, "Optuna storage")):
        if uri.startswith("sqlite:///"):  # a corrupt file: one line now, not minutes of retries later
            check_readable(Path(uri.removeprefix("sqlite:///")), what)
    if config.tracking and not store.local_tracking:  # a server that does not answer fails in seconds
        from automl.tracking import check_server

        check_server(store.tracking_uri)
    return store


def check_writable(home: Path) -> None:
    """Refuse, before anything is loaded or created, a home whose nearest existing folder cannot be written."""
    folder = home
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        what = "is not a folder" if folder.exists() and not folder.is_dir() else "cannot be written"
        raise StoreError(f"{home}: the store cannot be created here ({folder} {what})")


def check_metric_comparable(space: SearchSpace, metric: str, task: str, fixed: dict[str, Any]) -> None:
    """Refuse an objective that depends on a searched loss: MSE and Huber values do not compare."""
    param = space.params.get("loss")
    if metric != "loss" or param is None or "loss" in fixed:
        return
    options = param.extremes(task)
    if len(options) > 1:
        raise AutoMLError(
            f"--metric loss is not comparable across trials while the loss is searched "
            f"({', '.join(map(str, options))}); pin it with --set loss=... or use another metric"
        )


class _Quota:
    """Stop after this process finished ``quota`` trials, when the whole study has ``budget`` finished trials
    (every worker on it counts), or after ``max_failures`` failures in a row."""

    def __init__(
        self, quota: int, max_failures: int, progress: ProgressReporter | None, budget: int | None = None
    ) -> None:
        self.quota = quota
        self.budget = budget
        self.max_failures = max_failures
        self.progress = progress
        self.finished = 0
        self.failures = 0
        self.stopped_reason: str | None = None

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        failed = trial.state == optuna.trial.TrialState.FAIL
        self.failures = self.failures + 1 if failed else 0
        self.finished += trial.state in FINISHED
        in_study = count_finished(study) if self.progress is not None or self.budget is not None else 0
        if self.progress is not None:
            value = "-" if trial.value is None else f"{trial.value:.4g}"
            self.progress.on_progress(in_study, _best_value(study), f"#{trial.number} {trial.state.name} {value}")
        if self.max_failures and self.failures >= self.max_failures:
            self.stopped_reason = (
                f"stopped after {self.failures} consecutive failed trials "
                f"(last error: {read_trial(trial).error or 'unknown'})"
            )
            study.stop()
        elif self.finished >= self.quota or (self.budget is not None and in_study >= self.budget):
            study.stop()


def _best_value(study: optuna.Study) -> float | None:
    try:
        return float(study.best_value)
    except ValueError:
        return None


@dataclass
class Session:
    """Everything one process needs to run trials of a study, prepared once (data loaded once)."""

    config: SearchConfig
    store: Store
    family: families.Family
    space: SearchSpace
    fixed: dict[str, Any]
    dataset: Dataset
    metric: str
    direction: str
    tracker: StudyTracker
    study: optuna.Study
    parent_id: str
    started: float

    @property
    def workers(self) -> int:
        """Local worker processes; ``prepare`` has resolved the config's ``None`` (one per GPU) to a number."""
        assert self.config.workers is not None
        return self.config.workers


def prepare(config: SearchConfig, join: bool = False, dataset: Dataset | None = None) -> Session:
    """Validate everything (space, data, metric, servers) before creating a study or a run, then open them.

    ``join=True`` attaches to an existing study and its parent run (a worker) instead of setting it up.
    ``dataset`` is data already in memory (``automl.Tuner``); ``config.data`` then only names it.
    """
    started = time.perf_counter()
    store = check_stores(config)
    space: SearchSpace
    if config.hypermodel:
        from automl.hypermodel import load_hypermodel, tunes_in_fit

        family, space = load_hypermodel(config.hypermodel)
        config = dataclasses.replace(config, family=family.name)
        if config.isolation == "process" and tunes_in_fit(space):
            # what fit() draws must reach this trial's Optuna params, which only this process can write
            logger.warning("%s overrides fit(): its trials train in this process", config.hypermodel)
            config = dataclasses.replace(config, isolation="none")
    else:
        family = families.get(config.family)
        space = space_for(config)
    fixed = pin_params(space, dict(config.fixed))
    workers = config.workers
    if workers is None:  # the settings themselves were checked when the config was made
        from automl.backend import gpu_count

        workers = max(1, gpu_count() * config.trials_per_gpu)
        config = dataclasses.replace(config, workers=workers)
    if config.isolation == "process":  # this process trains (in one trial process per worker slot)
        from automl.execution import start_server

        start_server()  # imports Keras in its own process while this one loads data and opens the stores
    if dataset is None:
        dataset = load_dataset(config.data, **config.data_options())
    if config.hypermodel:
        from automl.hypermodel import unscaled_targets

        dataset = unscaled_targets(dataset)
    family.check_dataset(dataset, config.data)
    from automl.training import resolve_metric

    metric, direction = resolve_metric(dataset.task, config.metric, family)  # the chosen family's objectives
    check_metric_comparable(space, metric, dataset.task, fixed)
    if config.lint and not join:
        from automl.lint import lint_space

        # a branch that cannot build, or is too large to, fails here, before any trial
        lint_space(
            family, space, dataset.spec, fixed, max_params=config.max_params, trust_model_code=config.trust_model_code
        )
    if config.deterministic:
        from automl.backend import enable_determinism

        enable_determinism()

    from automl.sqlite_tuning import tune_sqlite_under
    from automl.tracking_interface import open_tracker

    if store.local_tracking or store.storage.startswith(("sqlite", "journal:")):
        try:
            store.home.mkdir(parents=True, exist_ok=True)
            tune_sqlite_under(store.home)
        except OSError as exc:
            raise StoreError(f"{store.home}: the store cannot be written here ({exc.strerror or exc})") from None
    tracker = open_tracker(store, config.study_name, config.tracking)
    storage = open_storage(store.storage)
    if store.storage.startswith("sqlite") and workers > 2:
        logger.warning("sqlite storage with %d workers: expect lock waits; use PostgreSQL for more", workers)
    attrs = {
        "family": family.name,
        "metric": metric,
        "task": dataset.task,
        "data": config.data,
        "target": config.target,
        "space_sha256": space.sha256,
        "data_sha256": dataset.description["sha256"],
    }
    seed_offset = 0
    if not join:
        probe = optuna.create_study(
            study_name=config.study_name, storage=storage, direction=direction, load_if_exists=True
        )
        seed_offset = len(probe.get_trials(deepcopy=False))
    else:
        seed_offset = len(load_study(config.study_name, store.storage).get_trials(deepcopy=False)) + os.getpid()
    # a continued study (or another worker) must not replay the same sampler seed
    study = open_study(
        config.study_name,
        storage,
        direction,
        get_sampler(config.sampler, config.seed + seed_offset),
        get_pruner(config.pruner, config.epochs),
        attrs,
    )
    if join:
        parent_id = read_study(study).parent_run_id
        if not parent_id or not _run_exists(tracker, study):
            raise AutoMLError(
                f"study '{config.study_name}' has no MLflow parent run at {store.tracking_uri}; "
                f"start it with `automl search` against the same tracking URI"
            )
        return Session(
            config, store, family, space, fixed, dataset, metric, direction, tracker, study, str(parent_id), started
        )
    if config.start and seed_offset == 0:  # only a new study starts from the space's known-good points
        points = space.start_points(dataset.task, dataset.spec.kind, fixed, len(dataset.y_train))[: config.trials]
        if enqueue_starts(study, points):
            logger.info("first %d trial(s): starting configurations of %s", len(points), space.source)
    from automl.provenance import package_versions

    recorded = read_study(study)
    parent_id = tracker.attach_parent(
        recorded.parent_run_id if _run_exists(tracker, study) else None,
        {"automl.family": family.name, "automl.metric": metric, "automl.direction": direction},
    )
    update_study(
        study,
        config={k: v for k, v in dataclasses.asdict(config).items() if k not in ("home", "tracking_uri", "storage")},
        space_text=space.text,
        versions=package_versions(),
        deterministic=recorded.deterministic or config.deterministic,
        parent_run_id=parent_id,
    )
    tracker.log_study_inputs(parent_id, space.text, dataset.description)
    return Session(config, store, family, space, fixed, dataset, metric, direction, tracker, study, parent_id, started)


def trial_settings(session: Session) -> TrialSettings:
    from automl.objective import TrialSettings
    from automl.training import RunOptions
    from automl.workers import slot_devices, threads_per_worker

    devices = slot_devices(session.workers) if slotted(session) else (None,)
    on_cpu = all(device is None for device in devices)
    return TrialSettings(
        epochs=session.config.epochs,
        seed=session.config.seed,
        metric=session.metric,
        direction=session.direction,
        fixed=session.fixed,
        checkpoint_dir=session.store.checkpoints_dir / session.config.study_name,
        isolation=session.config.isolation,
        oom_retry=session.config.oom_retry,
        options=RunOptions.of(session.config.mixed_precision, session.config.deterministic),
        executions=session.config.executions_per_trial,
        trust_model_code=session.config.trust_model_code,
        threads=threads_per_worker(len(devices) if on_cpu else 1),  # CPU slots split the cores
        worker_max_trials=session.config.worker_max_trials,
        worker_max_rss_growth_mb=session.config.worker_max_rss_growth_mb,
        devices=devices,
    )


def slotted(session: Session) -> bool:
    """Whether this process drives ``--workers`` trial slots itself (the pool); else it starts worker processes."""
    return session.workers > 1 and session.config.isolation == "process"


def run_trials(
    session: Session, quota: int, progress: ProgressReporter | None = None, budget: int | None = None
) -> str | None:
    """Run ``quota`` finished trials in this process (fewer once the study has ``budget``); why it stopped early."""
    from automl.execution import stop_server
    from automl.objective import Objective
    from automl.workers import reap_dead_trials

    reap_dead_trials(session.study, session.tracker.kill_trial)
    objective = Objective(
        session.family,
        session.space,
        session.dataset,
        trial_settings(session),
        session.tracker,
        session.parent_id,
        on_epoch=getattr(progress, "on_epoch", None),
    )
    limiter = _Quota(quota, session.config.max_failures, progress, budget)
    slots = len(objective.settings.devices)
    # what exists now (libraries, the data, the stores) outlives the trials: out of the cyclic collector's sight
    # until they end, a full collection scans only what the trials make
    gc.collect()
    gc.freeze()
    try:
        with stop_on_signals():
            if slots == 1:
                session.study.optimize(
                    objective,
                    timeout=session.config.timeout,
                    callbacks=[limiter],
                    catch=(Exception,),
                    gc_after_trial=False,
                )
            else:
                _optimize_slots(session, objective, limiter, slots)
            if interrupts.requested():  # an interrupt that something below swallowed still stops the search
                raise KeyboardInterrupt
    finally:
        gc.unfreeze()
        objective.close()  # the trial processes exit
        if interrupts.requested():
            stop_server()  # it may still be importing Keras, holding the terminal's pipes open
    return limiter.stopped_reason


def _optimize_slots(session: Session, objective: Any, limiter: _Quota, slots: int) -> None:
    """Trials on ``slots`` threads, each driving one trial process; never more trials started than the budget
    still needs, so the study ends at its budget exactly (a failed trial is made up in another round)."""
    _one_pop_at_a_time(session.study)
    timeout = session.config.timeout
    deadline = None if timeout is None else time.monotonic() + timeout
    while limiter.stopped_reason is None and not interrupts.requested():
        needed = limiter.quota - limiter.finished
        if limiter.budget is not None:
            needed = min(needed, limiter.budget - count_finished(session.study))
        left = None if deadline is None else deadline - time.monotonic()
        if needed <= 0 or (left is not None and left <= 0):
            return
        session.study.optimize(
            objective,
            n_trials=needed,
            n_jobs=min(slots, needed),
            timeout=left,
            callbacks=[limiter],
            catch=(Exception,),
            gc_after_trial=False,
        )


def _one_pop_at_a_time(study: optuna.Study) -> None:
    """Let one thread at a time take an enqueued trial (a starting point) off the study's queue.

    Optuna marks the trial RUNNING only if it is still WAITING, but on SQLite (no row locks) two threads can both
    read WAITING and both take it: two slots then train the same trial. Other processes are not affected by
    this lock; with many processes, use PostgreSQL.
    """
    pop = getattr(study, "_pop_waiting_trial_id", None)
    if pop is None or getattr(pop, "automl_locked", False):
        return
    lock = threading.Lock()

    def locked() -> int | None:
        with lock:
            return pop()

    locked.automl_locked = True  # type: ignore[attr-defined]
    study._pop_waiting_trial_id = locked  # type: ignore[method-assign]


def search(config: SearchConfig, progress: ProgressReporter | None = None) -> SearchResult:
    """Run (or continue) a search and register its best model; see ``SearchConfig`` for the knobs."""
    if config.data and not config.data.startswith("demo:") and os.path.exists(config.data):
        config = dataclasses.replace(config, data=os.path.abspath(config.data))
    return search_session(prepare(config), progress)


def search_session(session: Session, progress: ProgressReporter | None = None) -> SearchResult:
    """Run the trials of a prepared session to its budget, then register the best model."""
    config, study, tracker = session.config, session.study, session.tracker
    done_before = count_finished(study)
    target = done_before + config.trials
    update_study(study, budget=target)
    if progress is not None:
        progress.on_start(config.study_name, target, done_before, session.direction, session.metric)
    stopped_reason = None
    try:
        if session.workers > 1 and not slotted(session):  # --isolation none: a process per worker
            stopped_reason = _run_workers(session, progress)
        else:
            stopped_reason = run_trials(session, config.trials, progress, budget=target)
    except KeyboardInterrupt:
        tracker.finish_study(session.parent_id, {}, {"automl.stopped": "interrupted"}, status="KILLED")
        raise
    return finalize(session, stopped_reason, progress)


def _run_workers(session: Session, progress: ProgressReporter | None) -> str | None:
    from automl.workers import spawn_workers, split, wait_for

    config, store = session.config, session.store
    quotas = [q for q in split(config.trials, session.workers) if q > 0]

    def tick() -> None:
        if progress is not None:
            progress.on_progress(count_finished(session.study), _best_value(session.study), "")

    processes = spawn_workers(
        local_worker,
        config.study_name,
        quotas,
        config.home,
        store.tracking_uri,
        store.storage,
        trials_per_gpu=config.trials_per_gpu,
    )
    with stop_on_signals():  # SIGTERM here, as Ctrl-C, is forwarded to the workers
        codes = wait_for(processes, tick)
    failed = [code for code in codes if code not in (0,)]
    return f"{len(failed)} of {len(codes)} workers exited with errors ({failed})" if failed else None


def local_worker(
    env: dict[str, str], study: str, quota: int, home: str | None, tracking_uri: str, storage: str
) -> None:
    """A local worker process: its device or threads, then ``quota`` trials of ``study`` in this process.

    Exit codes as ``automl worker``'s: 2 for a one-line error, 130 when interrupted, 1 when it stopped early.
    """
    import signal

    os.environ.update(env)  # before the backend's first op: the device and the thread pools are read then
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the forkserver ignores it; the search handles it
    try:
        result = worker(study, home=home, tracking_uri=tracking_uri, storage=storage, trials=quota)
    except AutoMLError as exc:
        print(f"automl worker: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    if result.stopped_reason:
        print(f"automl worker: {result.stopped_reason}", file=sys.stderr)
        sys.exit(1)


def worker(
    study_name: str,
    home: str | None = None,
    tracking_uri: str | None = None,
    storage: str | None = None,
    trials: int | None = None,
    register: bool = False,
    progress: ProgressReporter | None = None,
) -> SearchResult:
    """Join an existing study as one more worker: run trials (``trials``, else up to its budget)."""
    from automl.backend import configure, configured_threads

    configure(configured_threads())
    store = resolve_store(home, tracking_uri, storage)
    study = load_study(study_name, store.storage)
    recorded = read_study(study)
    record = dict(recorded.config)
    if not record:
        raise AutoMLError(f"study '{study_name}' was not created by automl search (no recorded config)")
    # without --trials, a worker stops when the whole study reaches its budget, whoever ran the trials
    budget = None if trials is not None else recorded.budget
    quota = trials if trials is not None else int(budget or 0) - count_finished(study)
    record.update(
        study=study_name,
        home=home,
        tracking_uri=tracking_uri,
        storage=storage,
        workers=1,
        trials=max(quota, 1),
        space=_recorded_space(study, store),
    )
    session = prepare(SearchConfig(**record), join=True)
    if progress is not None:
        progress.on_start(study_name, quota, 0, session.direction, session.metric)
    stopped_reason = run_trials(session, quota, progress, budget) if quota > 0 else None
    if register:
        return finalize(session, stopped_reason, progress)
    return _summary(session, stopped_reason)


def _recorded_space(study: optuna.Study, store: Store) -> str | None:
    """Write the space the study started with to HOME/spaces/, so every worker searches the same space."""
    recorded = read_study(study)
    text = recorded.space_text
    if not text or recorded.config.get("hypermodel"):
        return None  # a hypermodel's space is its code, loaded again from --hypermodel
    path = store.home / "spaces" / f"{study.study_name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return str(path)


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
    recorded = read_study(study)
    record = dict(recorded.config)
    if not record:
        raise AutoMLError(f"study '{study_name}' was not created by automl search (no recorded config)")
    budget = recorded.budget
    from automl.tracking_interface import open_tracker
    from automl.workers import reap_dead_trials

    reap_dead_trials(study, open_tracker(store, study_name, bool(record.get("tracking", True))).kill_trial)
    remaining = budget - count_finished(study)
    trials = overrides.pop("trials", None)
    if trials is None:
        if remaining <= 0:
            raise AutoMLError(
                f"study '{study_name}' already has its {budget} finished trials; pass --trials N to run more"
            )
        trials = remaining
    record.update({k: v for k, v in overrides.items() if v is not None})
    record.update(
        trials=trials,
        study=study_name,
        home=home,
        tracking_uri=tracking_uri,
        storage=storage,
        space=_recorded_space(study, store),
    )
    return search(SearchConfig(**record), progress)


def _run_exists(tracker: StudyTracker, study: optuna.Study) -> bool:
    run_id = read_study(study).parent_run_id
    return bool(run_id) and tracker.run_exists(str(run_id))


def _summary(session: Session, stopped_reason: str | None) -> SearchResult:
    trials = session.study.get_trials(deepcopy=False)
    states = {s.name: sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
    fit_seconds = float(sum(read_trial(t).fit_seconds or 0.0 for t in trials))
    config = session.config
    try:
        best = best_trial(session.study)
    except ValueError:
        best = None
    register_name = config.register_name or config.study_name
    registered = read_study(session.study).model
    return SearchResult(
        study=config.study_name,
        metric=session.metric,
        direction=session.direction,
        best_trial=None if best is None else best.number,
        best_value=None if best is None else best.value,
        best_params={} if best is None else trial_params(best),
        model_uri=None if registered is None else registered.uri,
        champion_uri=f"models:/{register_name}@champion" if config.tracking else None,
        register_name=register_name,
        test_metrics={} if registered is None else dict(registered.test_metrics),
        states=states,
        wall_seconds=time.perf_counter() - session.started,
        fit_seconds=fit_seconds,
        parent_run_id=session.parent_id,
        stopped_reason=stopped_reason,
    )


def finalize(session: Session, stopped_reason: str | None, progress: ProgressReporter | None = None) -> SearchResult:
    """Register the best trial's model, test it once on the test split, close the parent run."""
    study, tracker = session.study, session.tracker
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        reason = stopped_reason or "no trial completed"
        tracker.finish_study(session.parent_id, {}, {"automl.stopped": reason}, "FAILED")
        result = _summary(session, reason)
        return result
    try:
        return _register_best(session, stopped_reason, progress)
    except BaseException as exc:
        # the parent run must not stay RUNNING, and the study must not look registered by this search
        reason = " ".join(f"registering the best model failed: {type(exc).__name__}: {exc}".split())[:500]
        update_study(study, registration_error=reason)
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        tracker.finish_study(session.parent_id, {}, {"automl.stopped": reason}, status)
        raise


def _register_best(session: Session, stopped_reason: str | None, progress: ProgressReporter | None) -> SearchResult:
    study, tracker, config = session.study, session.tracker, session.config
    register_name = config.register_name or config.study_name
    best = best_trial(study)
    assert best.value is not None  # the best trial is a COMPLETE one
    best_value = best.value
    recorded = read_study(study)
    registered = recorded.model
    if registered and registered.trial == best.number and not recorded.registration_error:
        # another search on this study (or an earlier one) already registered this very trial: no second version
        if progress is not None:
            progress.on_finalize(f"trial {best.number} is already registered as {registered.uri}")
        tracker.finish_study(
            session.parent_id,
            {"best_value": best_value, "best_trial_number": best.number, **registered.test_metrics},
            {"automl.best_trial": str(best.number), "automl.model_uri": registered.uri},
        )
        return _summary(session, stopped_reason)
    if progress is not None:
        where = f"as {register_name}@champion" if config.tracking else f"to {session.store.home / 'models'}"
        progress.on_finalize(f"registering trial {best.number} {where}")
    core, source = best_model(best, session.family, session.dataset, trial_settings(session))
    packaged = package(
        core, session.family, session.dataset, config.study_name, best.number, source, config.trust_model_code
    )
    model_uri, _version = tracker.log_best_model(
        session.parent_id, packaged.model, packaged.metadata, packaged.example, register_name, packaged.networks
    )
    for name, image in packaged.images.items():
        tracker.log_image(session.parent_id, image, name)
    test_metrics = packaged.test_metrics
    update_study(
        study,
        model=RegisteredModel(model_uri, best.number, register_name, test_metrics),
        registration_error=None,
    )
    if config.report:
        from automl.report import log_report

        try:
            log_report(study, tracker)  # plots under report/ on the parent run
        except Exception as exc:  # a plot must never fail a finished search
            logger.warning("study %s: report not written: %s", config.study_name, exc)
    tracker.finish_study(
        session.parent_id,
        {"best_value": best_value, "best_trial_number": best.number, **test_metrics},
        {
            "automl.best_trial": str(best.number),
            "automl.model_uri": model_uri,
            "automl.best_weights": source,
            **({"automl.stopped": stopped_reason} if stopped_reason else {}),
        },
    )
    return _summary(session, stopped_reason)


@dataclass(frozen=True)
class Packaged:
    """A trial's network in the form that is registered, with what the registry stores beside it."""

    model: Any  # the family's export (an encoder, a generator, a scorer), else the network behind the preprocessing
    metadata: dict[str, Any]
    example: Any  # the input example logged with it
    images: dict[str, Any]  # pictures for the parent run (a generator's sample grid)
    test_metrics: dict[str, float]
    networks: dict[str, Any] = dataclasses.field(default_factory=dict)  # more networks in the registered model


def package(
    core: Any, family: families.Family, dataset: Dataset, study: str, trial: int, weights: str, trusted: bool = False
) -> Packaged:
    """What ``finalize`` and ``promote`` register for a trial's network, and its metrics on the test split."""
    from automl.export import export_model

    shipped = family.export(core, dataset) if family.export is not None else None
    if shipped is None:
        shipped = families.Export(core)
    exported = shipped.network if shipped.standalone else export_model(shipped.network, dataset)
    example = dataset.raw_example if shipped.example is None else shipped.example
    images = dict(shipped.images)
    metadata = {**dataset.metadata, **shipped.metadata, "study": study, "trial": trial, "weights": weights}
    if trusted:  # loading it runs the model's own code (a Lambda layer)
        metadata["trust_model_code"] = True
    metrics = evaluate(exported, dataset, family, metadata)
    return Packaged(exported, metadata, example, images, metrics, dict(shipped.networks))


def best_model(
    best: optuna.trial.FrozenTrial, family: families.Family, dataset: Dataset, settings: TrialSettings
) -> tuple[Any, str]:
    """The best trial's network at its best epoch: its checkpoint, else retrained with its seed."""
    from automl.export import load_keras_file

    attrs = read_trial(best)
    path = attrs.checkpoint
    if path and not Path(path).is_file():  # a moved home: the checkpoint is in this home's folder
        path = str(settings.checkpoint_dir / Path(path).name)
    if path and Path(path).is_file():
        return load_keras_file(path, trusted=getattr(settings, "trust_model_code", False)), "checkpoint"
    from automl.execution import DataRef, train_job
    from automl.training import TrainingData

    logger.info("trial %s has no checkpoint here; retraining it with its seed", best.number)
    data = TrainingData.from_dataset(dataset)
    seed = int(attrs.seed if attrs.seed is not None else settings.seed)
    job = settings.job(
        family.name, trial_params(best), DataRef("", dataset.spec, data.y_std), f"val_{settings.metric}", seed
    )
    model, _ = train_job(job, family, dataset, data)
    return model, "retrained"


def as_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Class probabilities from a classifier's outputs: as they are, or a softmax of logits."""
    values = np.asarray(outputs, dtype="float64")
    if values.min() >= 0 and np.allclose(values.sum(axis=-1), 1.0, atol=1e-3):
        return values
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))  # logits (a model without a softmax)
    return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True))


def evaluate(
    exported: Any, dataset: Dataset, family: Any = None, metadata: dict[str, Any] | None = None
) -> dict[str, float]:
    """Test-split metrics of the exported raw-input model, in the original units (or the family's own)."""
    if family is not None and getattr(family, "evaluate", None):
        own = family.evaluate(exported, dataset, metadata if metadata is not None else dataset.metadata)
        if own is not None:
            return own
    outputs = predict_inputs(exported, adapt_input(dataset.metadata, dataset.raw_test))
    y = dataset.y_test
    if dataset.task == "classification":
        probs = np.clip(as_probabilities(outputs), 1e-7, 1.0)
        return {
            "test_accuracy": float(np.mean(np.argmax(outputs, axis=-1) == y)),
            "test_log_loss": float(-np.mean(np.log(probs[np.arange(len(y)), y]))),
        }
    pred = outputs.reshape(len(y), -1)
    truth = y.reshape(len(y), -1)
    err = pred - truth
    return {"test_rmse": float(np.sqrt(np.mean(err**2))), "test_mae": float(np.mean(np.abs(err)))}


__all__ = [
    "FINISHED",
    "ProgressReporter",
    "SearchResult",
    "Session",
    "finalize",
    "prepare",
    "resume",
    "run_trials",
    "search",
    "worker",
]
