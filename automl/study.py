"""The Optuna side: storages, samplers, pruners, and opening a study to create or continue it."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

from automl.config import Direction
from automl.errors import AutoMLError, StoreError
from automl.record import queued_attrs, read_study, read_trial, write_study

logger = logging.getLogger(__name__)
SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc")
PRUNERS = ("median", "asha", "hyperband", "none")
SCHEMA_ATTEMPTS = 5  # a new database's tables: each try finds more of them made by the workers it raced
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def get_sampler(name: str, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """An Optuna sampler by name; TPE is multivariate and grouped, so conditional spaces work."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=5)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    raise AutoMLError(f"unknown sampler '{name}' (valid: {', '.join(SAMPLERS)})")


def get_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    """An Optuna pruner by name; every pruner sees one report per epoch."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(1, epochs // 4))
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1), reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise AutoMLError(f"unknown pruner '{name}' (valid: {', '.join(PRUNERS)})")


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """``sqlite:///``, ``postgresql://`` (any SQLAlchemy URL) or ``journal:PATH``."""
    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
        if url.startswith("sqlite:///"):
            from pathlib import Path

            from automl.sqlite_tuning import check_readable, immutable_uri, read_only

            path = Path(url.removeprefix("sqlite:///"))
            check_readable(path, "Optuna storage")
            if read_only(path):  # a finished store on a read-only mount can still be inspected
                url = f"sqlite:///{immutable_uri(path)}&uri=true"
        if url.startswith("sqlite"):
            # one machine: a dead worker's trials are found by its host and pid (workers.reap_dead_trials), so no
            # heartbeat thread and stale-trial query around every trial
            return _rdb_storage(url, engine_kwargs={"connect_args": {"timeout": 60}})
        # many machines: a worker on another host that dies is noticed by its missing heartbeat
        return _rdb_storage(
            url,
            engine_kwargs={"pool_pre_ping": True},
            heartbeat_interval=60,
            grace_period=180,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2),
        )
    except StoreError:
        raise
    except Exception as exc:  # SQLAlchemy and drivers raise many types; the user must see the URL
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"Optuna storage '{url}' cannot be used: {reason}") from None


def _rdb_storage(url: str, **kwargs: Any) -> optuna.storages.RDBStorage:
    """``RDBStorage``, tried again when workers that start together race to create a new database's tables."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(1, SCHEMA_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except (IntegrityError, OperationalError, ProgrammingError) as exc:
            # another process made the table (or the version row) between this one's check and its create
            if not (isinstance(exc, IntegrityError) or "already exists" in str(exc)):
                raise
            time.sleep(0.1 * attempt)
    return optuna.storages.RDBStorage(url, **kwargs)


def open_study(
    name: str,
    storage: optuna.storages.BaseStorage,
    direction: Direction,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    attrs: dict[str, Any],
) -> optuna.Study:
    """Create the study, or continue it if it exists and searches the same thing the same way."""
    study = optuna.create_study(
        study_name=name, storage=storage, sampler=sampler, pruner=pruner, direction=direction, load_if_exists=True
    )
    if study.direction.name.lower() != direction:
        raise AutoMLError(
            f"study '{name}' exists and {study.direction.name.lower()}s; this search would {direction} "
            f"(use another --study name)"
        )
    record = read_study(study)
    for key in ("family", "metric", "task"):
        if getattr(record, key) is not None and getattr(record, key) != attrs.get(key):
            raise AutoMLError(
                f"study '{name}' exists with {key}={getattr(record, key)!r}, not {attrs.get(key)!r}; "
                f"its trials would not be comparable (use another --study name)"
            )
    for key, value in {**attrs, "direction": direction}.items():
        setattr(record, key, value)
    write_study(study, record)  # a study from before the record gets its record here
    return study


def enqueue_starts(study: optuna.Study, points: list[dict[str, Any]]) -> int:
    """Queue known-good configurations as a new study's first trials; the sampler fills any param they leave out."""
    for point in points:
        study.enqueue_trial(point, user_attrs=queued_attrs(origin="start"))
    return len(points)


def enqueue_retry(study: optuna.Study, trial: optuna.trial.FrozenTrial, retries: int) -> None:
    """Queue a failed trial's params again, recording which trial it retries and how many times it was."""
    again = queued_attrs(retried_from=trial.number, retries=retries)
    study.enqueue_trial(trial.params, user_attrs=again, skip_if_exists=False)


def count_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def load_study(name: str, storage_url: str) -> optuna.Study:
    """Load an existing study for inspection; a missing one names the study and the storage."""
    storage = open_storage(storage_url)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        known = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        hint = f" (studies: {', '.join(known)})" if known else " (it holds no study)"
        raise AutoMLError(f"study '{name}' not found in {storage_url}{hint}") from None


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The study's best trial; among trials tied on its value, one whose model was kept, so none is retrained.

    Two trial slots that finish with the same value both beat the best so far, but only the first keeps its model;
    Optuna may name the other one best. ``ValueError`` when no trial completed.
    """
    best = study.best_trial
    if read_trial(best).checkpoint:
        return best
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        kept = read_trial(trial).checkpoint
        if trial.value == best.value and kept and Path(str(kept)).is_file():
            return trial
    return best
