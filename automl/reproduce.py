"""Provenance of a trial, retraining a recorded trial from its record alone, and promoting any trial's model."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import optuna

from automl.backend import enable_determinism
from automl.config import SearchConfig, Store, resolve_store
from automl.errors import AutoMLError, DataError, StoreError
from automl.hypermodel import family_for
from automl.provenance import VERSION_TAG, package_versions, provenance_tags
from automl.record import read_study, read_trial, trial_params, update_study

logger = logging.getLogger(__name__)

TOLERANCE = 1e-6


@dataclass
class TrialRecord:
    """Everything a search recorded about one finished trial."""

    store: Store
    study: optuna.Study
    trial: optuna.trial.FrozenTrial
    config: SearchConfig
    family: str
    params: dict[str, Any]
    seed: int
    epochs: int
    metric: str
    direction: str

    @property
    def monitor(self) -> str:
        return f"val_{self.metric}"

    @property
    def value(self) -> float:
        """The objective value the study recorded (``load_record`` takes COMPLETE trials only, which have one)."""
        assert self.trial.value is not None
        return float(self.trial.value)


def load_record(
    study_name: str,
    number: int,
    home: str | None = None,
    tracking_uri: str | None = None,
    storage: str | None = None,
) -> TrialRecord:
    """A completed trial of a study run by ``automl search``, with the settings it ran under."""
    from automl.study import load_study

    store = resolve_store(home, tracking_uri, storage)
    study = load_study(study_name, store.storage)
    recorded = read_study(study)
    record = dict(recorded.config)
    if not record:
        raise AutoMLError(f"study '{study_name}' was not created by automl search (no recorded config)")
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise AutoMLError(f"study '{study_name}' has no trial {number} (trials: 0..{max(trials, default=-1)})")
    trial = trials[number]
    if trial.state != optuna.trial.TrialState.COMPLETE:
        raise AutoMLError(f"trial {number} of study '{study_name}' is {trial.state.name}; only COMPLETE trials qualify")
    known = {f.name for f in dataclasses.fields(SearchConfig)}
    options = {k: v for k, v in record.items() if k in known}
    if options.get("image_size") is not None:
        options["image_size"] = tuple(options["image_size"])
    config = SearchConfig(**{**options, "study": study_name})
    # fit-time params of a hypermodel reach Optuna's record even when the user attr was set before training
    attrs = read_trial(trial)
    params = trial_params(trial)
    retry = attrs.oom_retry
    if isinstance(retry, dict) and "batch_size" in retry:
        params["batch_size"] = retry["batch_size"]  # the trial finished at the smaller batch it was retried with
    return TrialRecord(
        store=store,
        study=study,
        trial=trial,
        config=config,
        family=str(recorded.family or params.get("family") or config.family),
        params=params,
        seed=int(attrs.seed if attrs.seed is not None else config.seed),
        epochs=int(attrs.epochs if attrs.epochs is not None else config.epochs),
        metric=str(recorded.metric or config.metric or "loss"),
        direction=study.direction.name.lower(),
    )


def ran_deterministic(record: TrialRecord) -> bool:
    """Whether the trial ran with deterministic kernels: its own attr, else the study's, else no."""
    own = read_trial(record.trial).deterministic_ops
    return bool(own if own is not None else read_study(record.study).deterministic)


def load_record_data(record: TrialRecord) -> Any:
    """The study's data set, refused if its content changed since the study recorded its hash."""
    from automl.data import load_dataset

    dataset = load_dataset(record.config.data, **record.config.data_options())
    if record.config.hypermodel:
        from automl.hypermodel import unscaled_targets

        dataset = unscaled_targets(dataset)
    recorded = read_study(record.study).data_sha256
    current = dataset.description.get("sha256")
    if recorded and current and recorded != current:
        raise DataError(
            f"{record.config.data}: content changed since study '{record.study.study_name}' ran "
            f"(sha256 {current[:12]}... != recorded {recorded[:12]}...)"
        )
    return dataset


@dataclass
class Reproduction:
    """A recorded trial's value next to the value of its retrain."""

    study: str
    trial: int
    family: str
    metric: str
    recorded: float
    reproduced: float | None
    difference: float | None
    tolerance: float
    matches: bool
    seed: int
    epochs: int
    params: dict[str, Any]
    history_max_difference: float | None
    space_matches: bool | None
    deterministic: bool
    version_changes: dict[str, list[str | None]] = field(default_factory=dict)


def _recorded_versions(record: TrialRecord) -> dict[str, str]:
    run_id = read_trial(record.trial).mlflow_run_id
    if run_id:
        try:
            from automl.tracking_interface import open_tracker

            tags = open_tracker(record.store, record.study.study_name, record.config.tracking).run_tags(run_id)
        except StoreError:
            tags = {}
        versions = {k.removeprefix(VERSION_TAG): v for k, v in tags.items() if k.startswith(VERSION_TAG)}
        if versions:
            return versions
    return dict(read_study(record.study).versions)


def _history_difference(recorded: list[dict[str, float]], retrained: list[dict[str, float]]) -> float | None:
    """The largest per-epoch gap of any metric (loss, val_loss, ...) between the recorded and the retrained fit."""
    if not recorded or len(recorded) != len(retrained):
        return None
    gaps = [abs(a[key] - b[key]) for a, b in zip(recorded, retrained, strict=True) for key in a if key in b]
    finite = [gap for gap in gaps if math.isfinite(gap)]
    return max(finite) if finite else None


def reproduce(
    study_name: str,
    number: int,
    home: str | None = None,
    tracking_uri: str | None = None,
    storage: str | None = None,
    tolerance: float = TOLERANCE,
    deterministic: bool | None = None,
) -> Reproduction:
    """Retrain trial ``number`` from its record (params, seed, data, epochs).

    ``deterministic`` switches TensorFlow's deterministic kernels on; by default it follows the trial's (or the
    study's) ``deterministic_ops`` attr, since those kernels round differently from the default ones (~1e-6).
    """
    import keras

    from automl.execution import DataRef, TrainJob, train_job
    from automl.training import RunOptions, TrainingData

    record = load_record(study_name, number, home, tracking_uri, storage)
    family = family_for(record.family)
    dataset = load_record_data(record)
    if deterministic is None:
        deterministic = ran_deterministic(record)
    data = TrainingData.from_dataset(dataset)
    job = TrainJob.of(
        family.name,
        record.params,
        DataRef("", dataset.spec, data.y_std),
        record.epochs,
        record.monitor,
        record.direction,
        record.seed,
        RunOptions.of(record.config.mixed_precision, deterministic),
    )
    try:
        _, log = train_job(job, family, dataset, data)
    finally:
        keras.utils.clear_session()
    recorded = record.value
    value = log.best_value
    difference = None if value is None else abs(value - recorded)
    study_record = read_study(record.study)
    space_text = study_record.space_text
    space_sha = study_record.space_sha256
    space_matches = None
    if space_text is not None and space_sha:
        space_matches = hashlib.sha256(space_text.encode()).hexdigest() == space_sha
    before, now = _recorded_versions(record), package_versions()
    changes = {k: [before.get(k), now.get(k)] for k in sorted(before) if before.get(k) != now.get(k)}
    history_gap = _history_difference(list(read_trial(record.trial).history or []), log.history)
    matches = difference is not None and difference <= tolerance and (history_gap is None or history_gap <= tolerance)
    return Reproduction(
        study=study_name,
        trial=number,
        family=record.family,
        metric=record.monitor,
        recorded=recorded,
        reproduced=value,
        difference=difference,
        tolerance=tolerance,
        matches=matches,
        seed=record.seed,
        epochs=record.epochs,
        params=record.params,
        history_max_difference=history_gap,
        space_matches=space_matches,
        deterministic=deterministic,
        version_changes=changes,
    )


@dataclass
class Promotion:
    """A trial's model registered as a new version that the ``champion`` alias now points at."""

    study: str
    trial: int
    register_name: str
    version: str
    model_uri: str
    champion_uri: str
    weights: str
    test_metrics: dict[str, float]


def promote(
    study_name: str,
    number: int,
    home: str | None = None,
    tracking_uri: str | None = None,
    storage: str | None = None,
    register_name: str | None = None,
) -> Promotion:
    """Register trial ``number``'s model (its checkpoint, else retrained) and move ``champion`` to it."""
    from automl.objective import TrialSettings
    from automl.runner import best_model, package
    from automl.tracking import TRIAL_NUMBER
    from automl.tracking_interface import open_tracker
    from automl.training import RunOptions

    record = load_record(study_name, number, home, tracking_uri, storage)
    parent_id = read_study(record.study).parent_run_id
    if not parent_id:
        raise AutoMLError(f"study '{study_name}' has no MLflow parent run to log the model on")
    if not record.config.tracking:
        raise AutoMLError(f"study '{study_name}' ran with --no-tracking: there is no model registry to promote in")
    tracker = open_tracker(record.store, study_name)
    if not tracker.run_tags(parent_id):
        raise StoreError(
            f"the MLflow parent run {parent_id} of study '{study_name}' is not in {record.store.tracking_uri}"
        )
    family = family_for(record.family)
    dataset = load_record_data(record)
    settings = TrialSettings(
        epochs=record.epochs,
        seed=record.seed,
        metric=record.metric,
        direction=record.direction,
        fixed=dict(record.config.fixed),
        checkpoint_dir=record.store.checkpoints_dir / study_name,
        options=RunOptions.of(record.config.mixed_precision, ran_deterministic(record)),
        trust_model_code=record.config.trust_model_code,
    )
    if ran_deterministic(record):
        enable_determinism()  # the retrain (when there is no checkpoint) runs the kernels the trial ran
    core, source = best_model(record.trial, family, dataset, settings)
    # the same export as the search's own registration: a family's encoder, generator or scorer
    packaged = package(core, family, dataset, study_name, number, source, record.config.trust_model_code)
    test_metrics = packaged.test_metrics
    registered = read_study(record.study).model
    name = register_name or (registered and registered.register_name) or record.config.register_name or study_name
    model_uri, version = tracker.log_best_model(
        parent_id, packaged.model, packaged.metadata, packaged.example, name, packaged.networks
    )
    tracker.tag_model_version(name, version, {TRIAL_NUMBER: number, "automl.weights": source})
    update_study(record.study, champion={"trial": number, "model_uri": model_uri, "register_name": name})
    return Promotion(
        study=study_name,
        trial=number,
        register_name=name,
        version=version,
        model_uri=model_uri,
        champion_uri=f"models:/{name}@champion",
        weights=source,
        test_metrics=test_metrics,
    )


__all__ = [
    "Promotion",
    "Reproduction",
    "enable_determinism",
    "package_versions",
    "promote",
    "provenance_tags",
    "reproduce",
]
