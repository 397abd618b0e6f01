"""The typed records automl keeps in Optuna's storage: one ``StudyRecord`` per study, ``TrialAttrs`` per trial.

A study's record lives under one versioned user attr (``RECORD_KEY``). Stores written before it existed held the
same facts under separate keys; ``read_study`` reads those too, so such studies still resume. Every module reads
and writes study and trial attributes through this module (``automl.study`` creates and loads studies).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import optuna

RECORD_KEY = "automl_record"
RECORD_VERSION = 1
# the separate study attrs of stores from before the record (version 0)
_LEGACY = {
    "family": "family",
    "metric": "metric",
    "task": "task",
    "data": "data",
    "target": "target",
    "space_sha256": "space_sha256",
    "data_sha256": "data_sha256",
    "space_text": "space_text",
    "config": "config",
    "versions": "versions",
    "deterministic": "deterministic_ops",
    "budget": "budget",
    "parent_run_id": "mlflow_parent_run_id",
    "registration_error": "registration_error",
    "champion": "champion",
}


@dataclass
class RegisteredModel:
    """The model a search registered: its version URI, the trial it came from and its test metrics."""

    uri: str
    trial: int
    register_name: str
    test_metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class StudyRecord:
    """What a study searches (family, task, metric, space, data), its budget, parent run and registered model."""

    family: str | None = None
    task: str | None = None
    metric: str | None = None
    direction: str | None = None
    data: str | None = None
    target: str | None = None
    data_sha256: str | None = None
    space_sha256: str | None = None
    space_text: str | None = None
    config: dict[str, Any] = field(default_factory=dict)  # the SearchConfig fields it ran with (no store paths)
    versions: dict[str, str] = field(default_factory=dict)
    deterministic: bool = False
    budget: int = 0
    parent_run_id: str | None = None
    model: RegisteredModel | None = None
    registration_error: str | None = None
    champion: dict[str, Any] | None = None  # the trial ``automl promote`` registered last
    version: int = RECORD_VERSION

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))

    @property
    def monitor(self) -> str:
        """The objective's key in the epoch logs: ``val_<metric>``."""
        return monitor_of(self.metric or "loss")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> StudyRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        model = values.get("model")
        if isinstance(model, dict):
            values["model"] = RegisteredModel(**model)
        return cls(**values)


def monitor_of(metric: str) -> str:
    """The epoch-log key of an objective: ``val_<metric>``."""
    return f"val_{metric}"


def _legacy(study: optuna.Study) -> StudyRecord:
    attrs = study.user_attrs
    values = {name: attrs[key] for name, key in _LEGACY.items() if attrs.get(key) is not None}
    record = StudyRecord.from_json({**values, "version": 0})
    if attrs.get("model_uri"):
        record.model = RegisteredModel(
            uri=str(attrs["model_uri"]),
            trial=int(attrs.get("model_trial", -1)),
            register_name=str(attrs.get("register_name") or study.study_name),
            test_metrics=dict(attrs.get("test_metrics") or {}),
        )
    return record


def read_study(study: optuna.Study) -> StudyRecord:
    """The study's record (an empty one for a study automl did not create)."""
    stored = study.user_attrs.get(RECORD_KEY)
    record = StudyRecord.from_json(dict(stored)) if isinstance(stored, dict) else _legacy(study)
    if record.direction is None and len(study.directions) == 1:
        record.direction = study.direction.name.lower()
    return record


def write_study(study: optuna.Study, record: StudyRecord) -> None:
    """Store the record under its one key, at the current version."""
    record.version = RECORD_VERSION
    study.set_user_attr(RECORD_KEY, record.to_json())


def update_study(study: optuna.Study, **changes: Any) -> StudyRecord:
    """Read the record, change some fields, write it back; the updated record."""
    record = dataclasses.replace(read_study(study), **changes)
    write_study(study, record)
    return record


def stored_attrs(study: optuna.Study) -> dict[str, Any]:
    """The study's attrs exactly as the storage holds them (to inspect a store's layout)."""
    return dict(study.user_attrs)


def created_by_automl(record: StudyRecord) -> bool:
    return bool(record.config)


# ---- trials ---------------------------------------------------------------------------------------------
@dataclass
class TrialAttrs:
    """What automl records on each trial (Optuna user attrs, one key per field)."""

    params: dict[str, Any] | None = None  # every param, fit-time draws of a hypermodel included
    seed: int | None = None
    epochs: int | None = None
    worker: str | None = None
    origin: str | None = None  # "start" for a space's starting configuration, else "search"
    mlflow_run_id: str | None = None
    checkpoint: str | None = None
    history: list[dict[str, float]] | None = None
    best_epoch: int | None = None
    fit_seconds: float | None = None
    dtype_policies: list[str] | None = None
    deterministic_ops: bool | None = None
    threads: int | None = None  # TensorFlow's intra-op threads in the process that trained (0: its default)
    execution_values: list[float] | None = None
    error: str | None = None
    traceback: str | None = None
    child_pid: int | None = None
    oom_retry: dict[str, Any] | None = None
    retried_from: int | None = None
    retries: int | None = None


_TRIAL_FIELDS = frozenset(f.name for f in dataclasses.fields(TrialAttrs))


def read_trial(trial: optuna.trial.BaseTrial) -> TrialAttrs:
    """A trial's recorded attrs (fields it never set are None)."""
    attrs = trial.user_attrs
    return TrialAttrs(**{k: v for k, v in attrs.items() if k in _TRIAL_FIELDS})


def write_trial(trial: Any, **values: Any) -> None:
    """Record fields of ``TrialAttrs`` on a running trial; an unknown name is a programming error."""
    unknown = set(values) - _TRIAL_FIELDS
    if unknown:
        raise KeyError(f"not a trial attribute: {', '.join(sorted(unknown))}")
    for key, value in values.items():
        trial.set_user_attr(key, value)


def write_stored_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial, **values: Any) -> None:
    """``write_trial`` for a trial this process does not run (a dead worker's): straight to the storage."""
    queued_attrs(**values)
    for key, value in values.items():
        study._storage.set_trial_user_attr(trial._trial_id, key, value)


def trial_params(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """Every param of a trial: Optuna's, and those only the record holds (a hypermodel's fit-time draws)."""
    return {**trial.params, **dict(read_trial(trial).params or {})}


def queued_attrs(**values: Any) -> dict[str, Any]:
    """Attrs for ``study.enqueue_trial(..., user_attrs=...)``, checked like ``write_trial``'s."""
    unknown = set(values) - _TRIAL_FIELDS
    if unknown:
        raise KeyError(f"not a trial attribute: {', '.join(sorted(unknown))}")
    return dict(values)


__all__ = [
    "RECORD_KEY",
    "RegisteredModel",
    "StudyRecord",
    "TrialAttrs",
    "monitor_of",
    "queued_attrs",
    "read_study",
    "read_trial",
    "trial_params",
    "update_study",
    "write_study",
    "write_trial",
]
