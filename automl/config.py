"""Typed settings for a search, and the store layout under one home directory."""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from automl.errors import AutoMLError
from automl.families import Direction as Direction  # re-exported: an objective's direction
from automl.families import check_task

Task = str  # classification, regression, or a task a registered family declares (checked against the registry)
SamplerName = Literal["tpe", "random", "cmaes", "gp", "qmc"]
PrunerName = Literal["median", "asha", "hyperband", "none"]
IsolationName = Literal["none", "process"]
DEFAULT_HOME = "automl-runs"
HOME_ENV = "AUTOML_HOME"


@dataclass(frozen=True)
class Store:
    """Where a search keeps its state: MLflow tracking + registry, artifacts, Optuna storage."""

    home: Path
    tracking_uri: str
    storage: str
    artifacts_dir: Path
    checkpoints_dir: Path

    @property
    def local_tracking(self) -> bool:
        return self.tracking_uri.startswith(("sqlite:", "file:")) or "://" not in self.tracking_uri


def resolve_store(
    home: str | os.PathLike[str] | None = None,
    tracking_uri: str | None = None,
    storage: str | None = None,
) -> Store:
    """Resolve ``--home`` / ``AUTOML_HOME`` and the ``--tracking-uri`` / ``--storage`` overrides."""
    root = Path(home or os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser().resolve()
    return Store(
        home=root,
        tracking_uri=tracking_uri or f"sqlite:///{root / 'mlflow.db'}",
        storage=storage or f"sqlite:///{root / 'optuna.db'}",
        artifacts_dir=root / "artifacts",
        checkpoints_dir=root / "checkpoints",
    )


ISOLATION_ENV = "AUTOML_ISOLATION"


def default_isolation() -> IsolationName:
    """``process`` (each trial in a child process), unless ``AUTOML_ISOLATION`` says otherwise."""
    value = os.environ.get(ISOLATION_ENV, "").strip() or "process"
    return cast(IsolationName, value)  # another value is refused, naming --isolation, when the search is prepared


@dataclass
class SearchConfig:
    """Everything one search needs; the CLI and ``automl.search`` both build one of these."""

    data: str
    family: str = "mlp"
    target: str | None = None
    task: Task | None = None
    study: str | None = None
    trials: int = 20
    timeout: float | None = None
    epochs: int = 10
    seed: int = 0
    sampler: SamplerName = "tpe"
    pruner: PrunerName = "median"
    metric: str | None = None
    space: str | None = None
    fixed: dict[str, Any] = field(default_factory=dict)
    register_name: str | None = None
    max_failures: int = 5
    workers: int | None = None  # None: one per GPU (times trials_per_gpu) when there are GPUs, else 1
    trials_per_gpu: int = 1
    mixed_precision: bool = False
    isolation: IsolationName = field(default_factory=default_isolation)
    hypermodel: str | None = None
    lint: bool = True
    # models that Keras's safe_mode would refuse (Lambda layers) are searched, registered and loaded without it
    trust_model_code: bool = False
    max_params: int | None = None  # the lint refuses a branch over this many parameters (None: half the memory)
    start: bool = True  # a new study first tries the space's starting configurations
    report: bool = True
    tracking: bool = True  # False: no MLflow runs and no registry; the best model goes to HOME/models/
    deterministic: bool = False
    oom_retry: bool = False
    executions_per_trial: int = 1  # fits per trial with different seeds; the trial's value is their mean
    # --isolation process: a trial process is replaced after this many trials, or once its RSS grew by this many
    # MB since its first trial (0: no limit). A one-epoch MLP trial on demo:wine leaves ~10 MB behind in TensorFlow,
    # later fits slow down with it, and a fresh process costs ~0.6 s: about 20 trials balance the two
    worker_max_trials: int = 20
    worker_max_rss_growth_mb: float = 200.0
    image_size: tuple[int, int] | None = None
    text_column: str | None = None
    window: int | None = None
    horizon: int = 1
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    normal_label: str | None = None  # anomaly detection: the label of normal rows (default: the majority class)
    home: str | None = None
    tracking_uri: str | None = None
    storage: str | None = None

    def __post_init__(self) -> None:
        """Refuse settings that cannot run, with the CLI option's name, before anything is loaded."""
        choices = {
            "sampler": (self.sampler, SamplerName),
            "pruner": (self.pruner, PrunerName),
            "isolation": (self.isolation, Literal["none", "process"]),
        }
        check_task(self.task)
        for name, (value, allowed) in choices.items():
            valid = typing.get_args(allowed)
            if value is not None and value not in valid:
                raise AutoMLError(f"--{name} '{value}' is not one of {', '.join(valid)}")
        at_least_one = {
            "trials": self.trials,
            "epochs": self.epochs,
            "trials-per-gpu": self.trials_per_gpu,
            "executions-per-trial": self.executions_per_trial,
            "workers": 1 if self.workers is None else self.workers,
        }
        for name, number in at_least_one.items():
            if number < 1:
                raise AutoMLError(f"--{name} must be at least 1 (got {number})")
        at_least_zero = {
            "max-failures": self.max_failures,
            "worker-max-trials": self.worker_max_trials,
            "worker-max-rss-growth": self.worker_max_rss_growth_mb,
        }
        for name, amount in at_least_zero.items():
            if amount < 0:
                raise AutoMLError(f"--{name} must be 0 or more (got {amount})")
        for name, fraction in (("val_fraction", self.val_fraction), ("test_fraction", self.test_fraction)):
            if not 0.0 < fraction < 1.0:
                raise AutoMLError(f"{name} must be between 0 and 1 (got {fraction})")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SearchConfig:
        """The config from CLI-style options: fields by name, ``set_values`` as ``name=value`` pins; None (an
        option left out) means the field's default, read here (``AUTOML_ISOLATION`` included)."""
        values = {k: v for k, v in options.items() if k in _FIELDS and v is not None}
        pins = dict(values.pop("fixed", {}) or {})
        for item in options.get("set_values") or []:
            name, sep, raw = str(item).partition("=")
            if not sep or not name.strip():
                raise AutoMLError(f"--set '{item}': expected name=value")
            pins[name.strip()] = raw.strip()
        return cls(**values, fixed=pins)

    def data_options(self) -> dict[str, Any]:
        """Options every loader receives; each uses the ones it knows and ignores the rest."""
        return {
            "target": self.target,
            "task": self.task,
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "image_size": self.image_size,
            "text_column": self.text_column,
            "window": self.window,
            "horizon": self.horizon,
            "family": self.family,
            "normal_label": self.normal_label,
        }

    @property
    def study_name(self) -> str:
        if self.study:
            return self.study
        source = self.data.split(":", 1)[1] if self.data.startswith("demo:") else Path(self.data).stem
        family = self.hypermodel.rsplit(":", 1)[-1] if self.hypermodel else self.family
        return f"{family}-{source}"


_FIELDS = frozenset(f.name for f in dataclasses.fields(SearchConfig))
