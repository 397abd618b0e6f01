"""The family registry: ``get(name)`` -> ``Family``; ``names()`` lists the registered families.

A family is one module here plus one ``search_spaces/<name>.yaml``. Nothing else names a family.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from automl.errors import AutoMLError, DataError

if TYPE_CHECKING:
    from automl.data import Dataset

__all__ = ["SUPERVISED_TASKS", "Export", "Family", "check_task", "declared_tasks", "get", "names", "task_metrics"]

SUPERVISED_TASKS = ("classification", "regression")
Direction = Literal["minimize", "maximize"]  # an objective's direction, as Optuna spells it

BuildFn = Callable[[Mapping[str, Any], Any], Any]
FitFn = Callable[..., Any]
CompileFn = Callable[[Any, Mapping[str, Any], Any], Any]  # (model, params, spec) -> compiled model
# (exported raw-input model, dataset, model metadata) -> test metrics, or None for the task's defaults
EvaluateFn = Callable[[Any, Any, Mapping[str, Any]], "dict[str, float] | None"]


@dataclass(frozen=True)
class Export:
    """What a family registers for a trained network (its ``export`` hook's result)."""

    network: Any  # the Keras model that is registered
    standalone: bool = False  # it takes no raw data (a generator takes noise): no preprocessing goes in front
    example: Any = None  # the pyfunc input example; None: rows of the data set
    images: Mapping[str, Any] = field(default_factory=dict)  # pictures for the parent run: {artifact path: array}
    # more networks stored beside it in the registered model (a CycleGAN's two generators): {name: Keras model}
    networks: Mapping[str, Any] = field(default_factory=dict)
    # into the model's automl.json: ``predict_raw`` reads ``threshold`` (score + flag) and ``output_prefix``; the
    # family's ``evaluate`` may read what it put there (``test_metrics`` computed at export)
    metadata: Mapping[str, Any] = field(default_factory=dict)


# (trained network, dataset) -> what to register, or None for the network as is (behind the data's preprocessing)
ExportFn = Callable[[Any, Any], "Export | None"]
# (loaded dataset, --data source) -> None, or a DataError naming what the family cannot take in it
CheckFn = Callable[["Dataset", str], None]


@dataclass(frozen=True)
class Family:
    """How to build (and optionally train) one architecture family from plain param values."""

    name: str
    build: BuildFn
    data_kinds: frozenset[str]
    description: str = ""
    fit: FitFn | None = None
    # tasks beyond classification/regression the family trains for, each with its objectives (name -> direction,
    # the first is the default); the metric must appear as ``val_<name>`` in the epoch logs
    metrics: Mapping[str, Mapping[str, Direction]] | None = None
    default_task: str | None = None  # the task of a data set given without --target and --task
    compile: CompileFn | None = None
    evaluate: EvaluateFn | None = None
    export: ExportFn | None = None
    check: CheckFn | None = None  # what the data kind alone does not say (e.g. exactly two image domains)
    supervised: bool = True  # it also trains for classification and regression

    @property
    def tasks(self) -> tuple[str, ...]:
        """Every task this family trains for: the supervised ones (unless it opts out), then its own."""
        return (SUPERVISED_TASKS if self.supervised else ()) + tuple(self.metrics or {})

    def check_data(self, kind: str, source: str) -> None:
        """Refuse data this family cannot take, e.g. a CNN on a flat table."""
        if kind not in self.data_kinds:
            raise DataError(
                f"family '{self.name}' does not fit {kind} data from {source} "
                f"(it takes: {', '.join(sorted(self.data_kinds))})"
            )

    def check_dataset(self, dataset: Dataset, source: str) -> None:
        """Refuse a loaded data set this family cannot train on: its kind, its task, then the family's own check."""
        self.check_data(dataset.spec.kind, source)
        if dataset.task not in self.tasks:
            raise DataError(
                f"family '{self.name}' does not train for {dataset.task} ({source}); its tasks: {', '.join(self.tasks)}"
            )
        if self.check is not None:
            self.check(dataset, source)


def names() -> list[str]:
    """Registered families: modules in this package that have a shipped search space."""
    from automl.spaces import default_space_names

    modules = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return sorted(modules & set(default_space_names()))


def get(name: str | Family) -> Family:
    """Look a family up by name; an unknown name raises ``AutoMLError`` listing the valid ones."""
    if isinstance(name, Family):
        return name
    if name.startswith("hypermodel:"):  # the registry holds the shipped families; a hypermodel is loaded by name
        raise AutoMLError(f"'{name}' is a hypermodel, not a registered family (load it with automl.hypermodel)")
    valid = names()
    if name not in valid:
        raise AutoMLError(f"unknown family '{name}' (valid: {', '.join(valid)})")
    family = importlib.import_module(f"{__name__}.{name}").FAMILY
    if not isinstance(family, Family):
        raise TypeError(f"{__name__}.{name}.FAMILY is not a Family")
    return family


def declared_tasks() -> tuple[str, ...]:
    """Every task a registered family trains for: classification and regression, then each family's own."""
    tasks = list(SUPERVISED_TASKS)
    for name in names():
        tasks += [task for task in get(name).tasks if task not in tasks]
    return tuple(tasks)


def check_task(task: str | None) -> None:
    """Refuse a ``--task`` that no registered family trains for, listing those that some family does."""
    if task is None or task in SUPERVISED_TASKS:
        return  # without importing every family
    valid = declared_tasks()
    if task not in valid:
        raise AutoMLError(f"--task '{task}' is not one of {', '.join(valid)}")


def task_metrics(task: str) -> dict[str, Direction] | None:
    """The objectives of a task that a family brings (the first family, by name, that declares it)."""
    for name in names():
        family = get(name)
        if family.metrics and task in family.metrics:
            return dict(family.metrics[task])
    return None
