"""Dry-run a search space: build every branch at its extreme values on a tiny input, before any training.

Every categorical choice is built at least once and every numeric param at its low and its high end (a
conditional param together with a parent value that activates it). Each branch reports its parameter count and a
memory estimate: weights, gradients and optimizer slots (4 bytes a float32 value) plus one batch of activations.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from automl.data import DataSpec
from automl.errors import AutoMLError
from automl.spaces import CONTEXT_KEYS, Choice, SearchSpace

logger = logging.getLogger(__name__)

LINT_BATCH = 2  # rows of the tiny input each branch runs on
DEFAULT_BATCH_SIZE = 32  # when the space does not search batch_size
# optimizer state per trainable value, on top of the weights and their gradients
OPTIMIZER_SLOTS = {"adam": 2, "adamw": 2, "rmsprop": 1, "sgd": 0}
# a made-up input per data kind, for linting without data (``--data`` gives the real one)
SYNTHETIC_SHAPES: dict[str, tuple[int, ...]] = {
    "table": (16,),
    "image": (32, 32, 3),
    "sequence": (16, 4),
    "text": (32,),
    "series": (16, 2),
}
BYTES_PER_PARAM = 16  # a float32 weight, its gradient and two Adam slots
SYNTHETIC_CLASSES = 3
SYNTHETIC_VOCABULARY = 1000


def synthetic_spec(kind: str, task: str | None = None, input_shape: Sequence[int] | None = None) -> DataSpec:
    """A small ``DataSpec`` of one data kind (series are always regression)."""
    if kind not in SYNTHETIC_SHAPES:
        raise AutoMLError(f"unknown data kind '{kind}' (valid: {', '.join(SYNTHETIC_SHAPES)})")
    task = "regression" if kind == "series" else (task or "classification")
    shape = tuple(int(n) for n in input_shape) if input_shape else SYNTHETIC_SHAPES[kind]
    extra = {"vocab_size": SYNTHETIC_VOCABULARY, "sequence_length": shape[0]} if kind == "text" else {}
    classes = SYNTHETIC_CLASSES if task == "classification" else None
    return DataSpec(kind=kind, task=task, input_shape=shape, n_classes=classes, extra=extra)


def default_kind(data_kinds: frozenset[str]) -> str:
    """The first kind, in ``SYNTHETIC_SHAPES`` order, that a family takes."""
    for kind in SYNTHETIC_SHAPES:
        if kind in data_kinds:
            return kind
    raise AutoMLError(f"no synthetic input for data kinds {', '.join(sorted(data_kinds))}; pass --data")


@dataclass
class BranchReport:
    """One built branch: its params, size and memory estimate (bytes)."""

    label: str
    params: dict[str, Any]
    n_params: int
    trainable_params: int
    batch_size: int
    weights_bytes: int
    training_state_bytes: int
    activations_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.training_state_bytes + self.activations_bytes


@dataclass
class LintReport:
    """Every branch of a space built on a tiny input of ``spec``."""

    family: str
    space: str
    task: str
    kind: str
    input_shape: tuple[int, ...]
    branches: list[BranchReport] = field(default_factory=list)
    fixed: dict[str, Any] = field(default_factory=dict)

    @property
    def largest(self) -> BranchReport:
        return max(self.branches, key=lambda b: b.total_bytes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for row, branch in zip(data["branches"], self.branches, strict=True):
            row["total_bytes"] = branch.total_bytes
        data["max_total_bytes"] = self.largest.total_bytes if self.branches else 0
        data["max_params"] = max((b.n_params for b in self.branches), default=0)
        return data


class ExtremeTrial:
    """A trial-like object that answers every ``suggest_*`` with an end of its range (or a given value)."""

    def __init__(self, high: bool, values: Mapping[str, Any] | None = None) -> None:
        self.high = high
        self.values = dict(values or {})

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        return float(self.values.get(name, high if self.high else low))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        if name in self.values:
            return int(self.values[name])
        return low + (high - low) // step * step if self.high else low

    def suggest_categorical(self, name: str, choices: Sequence[Choice]) -> Any:
        if name in self.values and self.values[name] in list(choices):
            return self.values[name]
        return choices[-1] if self.high else choices[0]


def _activating(space: SearchSpace, name: str, task: str, kind: str | None = None) -> dict[str, Any] | None:
    """Parent values that make ``name`` active (recursively), or None when only another task or kind would."""
    values: dict[str, Any] = {}
    for parent, allowed in (space.params[name].when or {}).items():
        if parent in CONTEXT_KEYS:
            if {"task": task, "kind": kind}[parent] not in allowed:
                return None
            continue
        options = space.params[parent].extremes(task)
        usable = [v for v in allowed if v in options] or list(allowed)
        above = _activating(space, parent, task, kind)
        if above is None:
            return None
        values.update(above)
        values[parent] = usable[0]
    return values


def branches(
    space: SearchSpace, task: str, fixed: Mapping[str, Any] | None = None, kind: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Param sets covering every choice and both ends of every range: all low, all high, then one per gap."""
    fixed = dict(fixed or {})
    found: dict[str, tuple[str, dict[str, Any]]] = {}

    def add(label: str, trial: ExtremeTrial) -> None:
        try:
            params = space.suggest(trial, task, fixed, kind=kind)  # a hypermodel's build(hp) runs here
        except AutoMLError:
            raise
        except Exception as exc:
            if type(exc).__name__ == "FailedTrialError":
                return  # KerasTuner's way to refuse a combination on purpose: the search fails such a trial
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            raise AutoMLError(f"{space.source}: branch {label} fails to build: {reason}") from None
        found.setdefault(json.dumps(params, sort_keys=True, default=str), (label, params))

    add("all low", ExtremeTrial(high=False))
    add("all high", ExtremeTrial(high=True))
    for i, point in enumerate(space.start_points(task, kind, fixed)):
        add(f"start[{i}]", ExtremeTrial(high=False, values=point))
    for name, param in space.params.items():
        if name in fixed or not param.searched:
            continue
        parents = _activating(space, name, task, kind)
        if parents is None:
            continue
        for value in param.extremes(task):
            if any(params.get(name) == value and type(params.get(name)) is type(value) for _, params in found.values()):
                continue
            context = "".join(f", {k}={v}" for k, v in parents.items())
            add(f"{name}={value}{context}", ExtremeTrial(high=False, values={**parents, name: value}))
    return list(found.values())


def tiny_inputs(model: Any, rows: int = LINT_BATCH, spec: DataSpec | None = None) -> Any:
    """Zeros shaped and typed like the model's inputs (strings for string inputs).

    A model built on first call (``Sequential()`` without an ``Input``) has no inputs yet: it gets zeros shaped
    like the data, ``spec``.
    """
    try:
        tensors = model.inputs
    except (AttributeError, ValueError):
        tensors = None
    if not tensors:
        if spec is None:
            raise ValueError(f"model '{model.name}' has no defined inputs and no data shape was given")
        return np.zeros((rows, *spec.input_shape), dtype="int32" if spec.kind == "text" else "float32")
    arrays = []
    for tensor in tensors:
        shape = tuple(rows if n is None else int(n) for n in tensor.shape)
        dtype = str(tensor.dtype)
        arrays.append(np.full(shape, "", dtype=object) if dtype == "string" else np.zeros(shape, dtype=dtype))
    return arrays[0] if len(arrays) == 1 else arrays


def _bytes(variables: Sequence[Any]) -> int:
    return int(sum(int(np.prod(v.shape)) * np.dtype(str(v.dtype)).itemsize for v in variables))


def _activation_values(model: Any) -> int:
    """Values one sample leaves behind: the outputs of every layer (kept for the backward pass)."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            outputs = keras.tree.flatten(layer.output)
        except (AttributeError, ValueError):  # a layer never called in a graph
            continue
        for output in outputs:
            total += int(np.prod([n for n in output.shape[1:] if n is not None] or [1]))
    return total


def measure(label: str, model: Any, params: Mapping[str, Any]) -> BranchReport:
    """Parameter counts and the memory estimate of one built branch."""
    trainable = _bytes(model.trainable_weights)
    optimizer = str(params.get("optimizer", "adam"))
    slots = OPTIMIZER_SLOTS.get(optimizer, 2)
    if optimizer == "sgd" and float(params.get("momentum", 0.0)) > 0:
        slots = 1
    batch_size = int(params.get("batch_size", DEFAULT_BATCH_SIZE))
    return BranchReport(
        label=label,
        params=dict(params),
        n_params=int(model.count_params()),
        trainable_params=int(sum(int(np.prod(w.shape)) for w in model.trainable_weights)),
        batch_size=batch_size,
        weights_bytes=_bytes(model.weights),
        training_state_bytes=trainable * (1 + slots),  # gradients + optimizer slots
        activations_bytes=_activation_values(model) * batch_size * 4,
    )


def check_loadable(model: Any) -> None:
    """Refuse what the registry's safe-mode load would refuse only after the whole search: Lambda layers."""
    import keras

    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Lambda):
            raise ValueError(
                f"layer '{layer.name}' is a Lambda: the best model could not be loaded safely from the registry "
                f"(Keras safe_mode runs no arbitrary code); use a registered custom layer instead, or pass "
                f"--trust-model-code if you trust this model's code"
            )


def check_output_width(outputs: Any, spec: DataSpec) -> None:
    """A classifier must output one value per class (scores or logits); anything else breaks its predictions."""
    if spec.task != "classification" or not spec.n_classes or isinstance(outputs, list | tuple | dict):
        return
    width = int(outputs.shape[-1])
    if width != spec.n_classes:
        hint = " (one sigmoid output is not taken yet: use 2 softmax outputs)" if width == 1 else ""
        raise ValueError(f"the model outputs {width} value(s) per row but the data has {spec.n_classes} classes{hint}")


def default_max_params() -> int:
    """Half the machine's memory, at ``BYTES_PER_PARAM`` a parameter (weights, gradients, optimizer slots)."""
    import os

    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 * 2**30
    return int(memory // 2 // BYTES_PER_PARAM)


def estimate_params(family: Any, params: Mapping[str, Any], spec: DataSpec) -> int | None:
    """The branch's parameter count from its layers' shapes, with no weight allocated; None when unknown.

    The builder runs in Keras's stateless scope with variable initialization deferred, so a branch of 1e11
    parameters is counted in milliseconds. A builder that compiles or creates variables by hand cannot run there.
    """
    import keras

    try:
        from keras.src.backend.common.stateless_scope import StatelessScope
    except ImportError:  # another Keras layout: no estimate, the real build decides
        return None
    try:
        with StatelessScope(initialize_variables=False):
            model = family.build({"family": family.name, **params}, spec)
            return int(sum(int(np.prod(v.shape)) for v in model.weights))
    except Exception:  # a builder that cannot be built abstractly is built for real
        return None
    finally:
        keras.utils.clear_session(free_memory=False)


def lint_space(
    family: Any,
    space: SearchSpace,
    spec: DataSpec,
    fixed: Mapping[str, Any] | None = None,
    max_params: int | None = None,
    trust_model_code: bool = False,
) -> LintReport:
    """Build, compile and run every branch of ``space`` on a tiny input of ``spec``.

    Each branch's parameter count is estimated first, without allocating weights; a branch over ``max_params``
    (default: half the machine's memory) is refused before anything is built for real. A branch that Keras's
    safe_mode could not load back (a Lambda layer) is refused unless ``trust_model_code``. Raises
    ``AutoMLError`` naming the first branch that fails and how many do.
    """
    import keras

    from automl import families
    from automl.training import compile_model

    family = families.get(family)
    report = LintReport(
        family=family.name,
        space=space.source,
        task=spec.task,
        kind=spec.kind,
        input_shape=tuple(spec.input_shape),
        fixed=dict(fixed or {}),
    )
    candidates = branches(space, spec.task, fixed, kind=spec.kind)
    failures: list[str] = []
    limit = max_params or default_max_params()
    for label, params in candidates:
        estimate = estimate_params(family, params, spec)
        if estimate is not None and estimate > limit:
            failures.append(
                f"{label} {json.dumps(params, default=str)}: {estimate:,} parameters, over the limit of {limit:,} "
                f"(--max-params)"
            )
            continue
        try:
            model = family.build({"family": family.name, **params}, spec)
            if family.compile is not None:
                family.compile(model, params, spec)
            else:
                compile_model(model, params, spec.task)
            outputs = model(tiny_inputs(model, spec=spec), training=False)
            check_output_width(outputs, spec)
            if not trust_model_code:
                check_loadable(model)
            report.branches.append(measure(label, model, params))
        except Exception as exc:  # a builder can raise anything; the user needs the branch that did
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            failures.append(f"{label} {json.dumps(params, default=str)}: {reason}")
            logger.info("branch %s of %s failed: %s", label, space.source, reason)
        finally:
            keras.utils.clear_session(free_memory=False)  # a gc.collect per branch costs ~0.25 s
    if failures:
        raise AutoMLError(
            f"{space.source}: {len(failures)} of {len(candidates)} branches of family '{family.name}' "
            f"fail to build; first: {failures[0]}"
        )
    return report


__all__ = ["BranchReport", "LintReport", "branches", "lint_space", "synthetic_spec"]


def lint_config(config: Any, kind: str | None = None, shape: Sequence[int] | None = None) -> LintReport:
    """Lint the space a search config would search, on its data's shape (``config.data``), else on a made-up
    input of ``kind`` (default: the family's first) and ``shape``: the same loaders ``automl search`` uses."""
    from automl import families
    from automl.spaces import pin_params, space_for

    family = families.get(config.family)
    space = space_for(config)
    fixed = pin_params(space, dict(config.fixed))
    if config.data:
        from automl.data import load_dataset

        dataset = load_dataset(config.data, **config.data_options())
        family.check_dataset(dataset, config.data)
        spec = dataset.spec
    else:
        made_up = kind or default_kind(family.data_kinds)
        family.check_data(made_up, f"--kind {made_up}")
        if config.task not in (None, *families.SUPERVISED_TASKS) or not family.supervised:
            raise AutoMLError(f"--task {config.task or family.default_task} needs real data to lint on: pass --data")
        spec = synthetic_spec(made_up, config.task, shape)
    return lint_space(family, space, spec, fixed, max_params=config.max_params)
