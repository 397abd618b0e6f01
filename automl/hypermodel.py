"""Run an unmodified KerasTuner ``build(hp)`` function or ``HyperModel`` under Optuna's samplers and pruners.

``HyperParameters`` mimics ``keras_tuner.HyperParameters`` on top of an Optuna trial (define-by-run). A
KerasTuner model samples inside ``build(hp)``, so the search space is only known by running it:

* ``HyperModelSpace.suggest(trial, task, fixed)`` runs ``build`` once with a live ``HyperParameters`` and
  returns the values it drew: the flat params dict a ``Space`` would give (``build`` runs again at fit time);
* the family's ``build(params, spec)`` replays those plain values, so a recorded trial rebuilds exactly
  (reproduce, promote, retrain) with no Optuna trial at all;
* the family's ``fit`` keeps the optimizer and loss that ``build`` compiled, and runs ``HyperModel.fit`` when
  the hypermodel overrides it; params drawn inside ``fit`` are sampled from the live trial and added to params.
  That ``fit`` reports each epoch through the callbacks it is given (``model.fit(..., **kwargs)``), or returns
  the objective (a number, a dict, a ``History``); Keras layers it calls on ``x`` before ``model.fit`` are put in
  front of the trained model (``InputWatch``), so the registered model takes raw inputs.

KerasTuner itself is only imported, when installed, to tell a ``HyperModel`` subclass from a build function.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from automl.errors import AutoMLError, SpaceError
from automl.families import Family

SAMPLINGS = ("linear", "log", "reverse_log")
PREFIX = "hypermodel:"
# (trial, values it drew): a fit-time ``hp`` of that same trial may still draw params (set by ``suggest``)
_LIVE_TRIAL: contextvars.ContextVar[Any] = contextvars.ContextVar("automl_hypermodel_trial", default=None)
_MISSING = object()
# (callbacks, keyword arguments) that a tuner's ``search(...)`` passes on to every trial's ``fit``
_FIT_OPTIONS: contextvars.ContextVar[tuple[list[Any], dict[str, Any]] | None] = contextvars.ContextVar(
    "automl_hypermodel_fit_options", default=None
)


@contextlib.contextmanager
def fit_options(callbacks: Sequence[Any], kwargs: Mapping[str, Any]) -> Iterator[None]:
    """Within this block, every hypermodel trial's ``fit`` also gets ``callbacks`` (copied) and ``kwargs``."""
    token = _FIT_OPTIONS.set((list(callbacks), dict(kwargs)))
    try:
        yield
    finally:
        _FIT_OPTIONS.reset(token)


class _AnyKind(frozenset[str]):
    """Every data kind: a KerasTuner model declares its own inputs."""

    def __contains__(self, item: object) -> bool:
        return True


ANY_KIND: frozenset[str] = _AnyKind({"any"})


def _as_list(values: Any) -> list[Any]:
    return list(values) if isinstance(values, list | tuple | set | frozenset) else [values]


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    lowered = str(raw).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"'{raw}' is not a bool (true/false)")


def _geometric(low: float, high: float, factor: float) -> list[float]:
    """``low, low*factor, ...`` up to ``high``: KerasTuner's log scale with a step."""
    if factor <= 1:
        raise ValueError(f"a log-scale step multiplies; it must be > 1 (got {factor})")
    values, value = [], low
    while value <= high * (1 + 1e-12):
        values.append(value)
        value *= factor
    return values


class HyperParameters:
    """The ``keras_tuner.HyperParameters`` API over an Optuna trial, or over recorded values.

    A value comes from, in order: the recorded ``values`` (replay), the pinned ``fixed`` values (``--set``,
    strings are parsed by the param's type), the ``trial`` (Optuna samples it), else KerasTuner's default.
    A param whose conditions do not hold returns ``None`` and gets no value, as in KerasTuner.
    """

    def __init__(
        self,
        trial: Any = None,
        values: Mapping[str, Any] | None = None,
        fixed: Mapping[str, Any] | None = None,
        overrides: Mapping[str, tuple[str, dict[str, Any]]] | None = None,
        tune_new_entries: bool = True,
    ) -> None:
        self.trial = trial
        self._recorded = dict(values or {})
        self._fixed = dict(fixed or {})
        # a tuner's ``hyperparameters=``: name -> (method, arguments) declared in place of the hypermodel's own
        self._overrides = dict(overrides or {})
        self._tune_new = tune_new_entries
        self._redirecting: set[str] = set()
        self.values: dict[str, Any] = {}
        self.space: list[dict[str, Any]] = []
        self._names: set[str] = set()
        self._conditions: list[tuple[str, list[Any]]] = []
        self._scopes: list[str] = []

    # ---- scopes ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def name_scope(self, name: str) -> Iterator[None]:
        """Prefix the names created inside with ``name/``."""
        self._scopes.append(name)
        try:
            yield
        finally:
            self._scopes.pop()

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Any) -> Iterator[None]:
        """Params created inside are active only while ``parent_name`` takes one of ``parent_values``."""
        parent = self._full_name(parent_name)
        if parent not in self._names:
            raise ValueError(f"`HyperParameter` named: {parent} not defined.")
        self._conditions.append((parent, _as_list(parent_values)))
        try:
            yield
        finally:
            self._conditions.pop()

    def _full_name(self, name: str) -> str:
        return "/".join([*self._scopes, name])

    def _active(self, conditions: Sequence[tuple[str, list[Any]]]) -> bool:
        return all(self.values.get(parent, _MISSING) in allowed for parent, allowed in conditions)

    def is_active(self, name: str) -> bool:
        return self._full_name(name) in self.values

    # ---- the value of one param ------------------------------------------------------------------
    def _retrieve(
        self,
        name: str,
        spec: dict[str, Any],
        sample: Callable[[Any, str], Any],
        default: Any,
        parse: Callable[[Any], Any],
        parent_name: str | None,
        parent_values: Any,
    ) -> Any:
        full = self._full_name(name)
        if full in self._overrides and full not in self._redirecting:
            method, arguments = self._overrides[full]
            self._redirecting.add(full)
            try:
                return getattr(self, method)(name, **arguments, parent_name=parent_name, parent_values=parent_values)
            finally:
                self._redirecting.discard(full)
        conditions = list(self._conditions)
        if parent_name is not None:
            parent = self._full_name(parent_name)
            if parent not in self._names:
                raise ValueError(f"`HyperParameter` named: {parent} not defined.")
            conditions.append((parent, _as_list(parent_values)))
        if full not in self._names:
            self._names.add(full)
            self.space.append({"name": full, **spec, "conditions": conditions})
        if not self._active(conditions):
            return None
        if full in self.values:
            return self.values[full]
        if full in self._recorded:
            value = self._recorded[full]
        elif full in self._fixed:
            try:
                value = parse(self._fixed[full])
            except ValueError as exc:
                raise SpaceError(f"--set '{full}={self._fixed[full]}': {exc}") from None
        elif self.trial is not None and (self._tune_new or full in self._overrides):
            try:
                value = sample(self.trial, full)
            except optuna.exceptions.UpdateFinishedTrialError:  # replaying after its trial ended
                value = default
        else:
            value = default
        self.values[full] = value
        return value

    def Int(  # KerasTuner's method names
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int | None = None,
        sampling: str = "linear",
        default: int | None = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> Any:
        """An integer in ``[min_value, max_value]`` (both included)."""
        low, high, sampling = int(min_value), int(max_value), _check_range(name, min_value, max_value, sampling)

        def sample(trial: Any, full: str) -> int:
            if sampling == "linear":
                return int(trial.suggest_int(full, low, high, step=int(step or 1)))
            if step not in (None, 1):
                return int(trial.suggest_categorical(full, [int(v) for v in _geometric(low, high, step)]))
            value = int(trial.suggest_int(full, low, high, log=True))
            return value if sampling == "log" else high + low - value

        spec = {"type": "int", "low": low, "high": high, "step": step, "sampling": sampling}
        initial = low if default is None else int(default)
        return self._retrieve(name, spec, sample, initial, int, parent_name, parent_values)

    def Float(
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str = "linear",
        default: float | None = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> Any:
        """A float in ``[min_value, max_value]``."""
        low, high, sampling = float(min_value), float(max_value), _check_range(name, min_value, max_value, sampling)

        def sample(trial: Any, full: str) -> float:
            if sampling == "linear":
                return float(trial.suggest_float(full, low, high, step=step))
            if step is not None:
                return float(trial.suggest_categorical(full, _geometric(low, high, step)))
            value = float(trial.suggest_float(full, low, high, log=True))
            # reverse_log: dense near max_value; Optuna records the mirrored draw
            return value if sampling == "log" else min(high, max(low, high + low - value))

        spec = {"type": "float", "low": low, "high": high, "step": step, "sampling": sampling}
        initial = low if default is None else float(default)
        return self._retrieve(name, spec, sample, initial, float, parent_name, parent_values)

    def Choice(
        self,
        name: str,
        values: Sequence[Any],
        ordered: bool | None = None,
        default: Any = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> Any:
        """One of ``values`` (int, float, str or bool)."""
        options = list(values)
        if not options:
            raise ValueError(f"Choice '{name}': values is empty")

        def parse(raw: Any) -> Any:
            for option in options:
                if option == raw or str(option).lower() == str(raw).strip().lower():
                    return option
            raise ValueError(f"'{raw}' is not one of {', '.join(map(str, options))}")

        def sample(trial: Any, full: str) -> Any:
            return trial.suggest_categorical(full, options)

        initial = default if default is not None else (None if None in options else options[0])
        spec = {"type": "choice", "values": options, "ordered": ordered}
        return self._retrieve(name, spec, sample, initial, parse, parent_name, parent_values)

    def Boolean(
        self, name: str, default: bool = False, parent_name: str | None = None, parent_values: Any = None
    ) -> Any:
        """``True`` or ``False``."""

        def sample(trial: Any, full: str) -> bool:
            return bool(trial.suggest_categorical(full, [False, True]))

        return self._retrieve(name, {"type": "boolean"}, sample, bool(default), _parse_bool, parent_name, parent_values)

    def Fixed(self, name: str, value: Any, parent_name: str | None = None, parent_values: Any = None) -> Any:
        """A constant: recorded with the params, never searched."""
        return self._retrieve(
            name,
            {"type": "fixed", "value": value},
            lambda trial, full: value,
            value,
            lambda raw: value,
            parent_name,
            parent_values,
        )

    # ---- reading values ----------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        """The current value of an active param."""
        full = self._full_name(name)
        if full in self.values:
            return self.values[full]
        if full in self._names:
            raise ValueError(f"{full} is currently inactive.")
        raise KeyError(f"{full} does not exist.")

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._full_name(name) in self.values

    def copy(self) -> HyperParameters:
        """The same values with nothing left to sample (``HyperModel(tunable=False)`` builds with a copy)."""
        twin = HyperParameters(values=self.values)
        twin.values = dict(self.values)
        twin.space = list(self.space)
        twin._names = set(self._names)
        return twin


def _check_range(name: str, low: float, high: float, sampling: str | None) -> str:
    mode = (sampling or "linear").lower()
    if mode not in SAMPLINGS:
        raise ValueError(f"'{name}': sampling must be one of {', '.join(SAMPLINGS)} (got {sampling!r})")
    if low > high:
        raise ValueError(f"'{name}': min_value ({low}) > max_value ({high})")
    if mode != "linear" and low <= 0:
        raise ValueError(f"'{name}': {mode} sampling needs min_value > 0 (got {low})")
    return mode


# ---- the hypermodel as a family and a space ----------------------------------------------------------------
_COMPILED: weakref.WeakKeyDictionary[Any, tuple[Any, Any, str, int | None]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class HyperModelSpace:
    """Space-like: ``suggest`` runs ``build(hp)`` once on the trial; ``sha256`` hashes the hypermodel's source."""

    source: str
    text: str
    hypermodel: Any
    family: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # unknown until build runs; kept for Space's shape
    overrides: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # see ``HyperParameters``
    tune_new_entries: bool = True

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def start_points(
        self, task: str, kind: str | None, fixed: Mapping[str, Any] | None = None, n_train: int | None = None
    ) -> list[dict[str, Any]]:
        """A hypermodel brings no starting configurations: its own defaults are its start."""
        return []

    def suggest(
        self,
        trial: Any,
        task: str,
        fixed: Mapping[str, Any] | None = None,
        kind: str | None = None,
        n_train: int | None = None,
    ) -> dict[str, Any]:
        """Draw one trial's params by running ``build(hp)`` with the trial behind ``hp``."""
        hp = HyperParameters(trial=trial, fixed=fixed, overrides=self.overrides, tune_new_entries=self.tune_new_entries)
        _LIVE_TRIAL.set((trial, hp.values))
        declare = getattr(self.hypermodel, "declare_hyperparameters", None)
        try:
            if callable(declare):
                declare(hp)
            self.hypermodel.build(hp)
        except Exception as exc:
            from automl.record import write_trial

            with contextlib.suppress(AttributeError):  # the lint's stand-in trials record nothing
                write_trial(trial, error=f"{type(exc).__name__}: {exc}"[:2000])
            raise
        unknown = sorted(set(fixed or {}) - set(hp.values))
        if unknown:
            raise SpaceError(
                f"--set {', '.join(unknown)}: not a param of {self.source} (params: {', '.join(hp.values)})"
            )
        return dict(hp.values)

    def parse_fixed(self, assignments: Sequence[str]) -> dict[str, Any]:
        """``--set name=value`` strings; each value is parsed by its param's type when ``build`` asks for it."""
        fixed: dict[str, Any] = {}
        for item in assignments:
            name, sep, raw = item.partition("=")
            if not sep or not name.strip():
                raise SpaceError(f"--set '{item}': expected name=value")
            fixed[name.strip()] = raw.strip()
        return fixed

    def describe(self) -> list[dict[str, Any]]:
        """The params one default build asks for (conditional ones only on their default branch)."""
        hp = HyperParameters(overrides=self.overrides)
        self.hypermodel.build(hp)
        return [dict(spec) for spec in hp.space]


class _BuildFunction:
    """A plain ``build(hp)`` function, shaped like a ``HyperModel`` without a ``fit``."""

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.build = function


def overrides_fit(hypermodel: Any) -> bool:
    if isinstance(hypermodel, _BuildFunction) or not callable(getattr(hypermodel, "fit", None)):
        return False
    base = _keras_tuner_hypermodel()
    if base is not None and isinstance(hypermodel, base):
        return type(hypermodel).fit is not base.fit
    return True


def tunes_in_fit(space: Any) -> bool:
    """Whether the hypermodel overrides ``fit`` (where it may draw more params than ``build`` does)."""
    return overrides_fit(getattr(space, "hypermodel", None))


def _keras_tuner_hypermodel() -> type[Any] | None:
    try:
        import keras_tuner
    except ImportError:
        return None
    return keras_tuner.HyperModel


def make_family(name: str, hypermodel: Any, description: str = "") -> Family:
    """A ``Family`` whose ``build(params, spec)`` replays recorded params through ``hypermodel.build``."""
    custom_fit = overrides_fit(hypermodel)

    def build_model(params: Mapping[str, Any], spec: Any) -> Any:
        model = hypermodel.build(HyperParameters(values=params))
        if getattr(model, "compiled", False):
            # automl compiles every model with its own metrics; ``fit`` puts this optimizer and loss back
            _COMPILED[model] = (model.optimizer, model.loss, spec.task, getattr(spec, "n_classes", None))
        return model

    def fit_model(model: Any, params: Any, data: Any, epochs: int, callbacks: list[Any]) -> Any:
        import keras

        from automl.training import FitResult, task_metrics
        from automl.training import fit_model as default_fit

        compiled = _COMPILED.pop(model, None)
        if compiled is not None:
            optimizer, loss, task, n_classes = compiled
            if task == "classification" and expects_one_hot(loss):
                # categorical cross-entropy wants one-hot labels; the data holds class indices
                width = int(model.outputs[0].shape[-1]) if getattr(model, "outputs", None) else int(n_classes or 0)
                data = one_hot_labels(data, max(width, int(n_classes or 0)))
                model.compile(optimizer=optimizer, loss=loss, metrics=[keras.metrics.CategoricalAccuracy("accuracy")])
            else:
                model.compile(optimizer=optimizer, loss=loss, metrics=task_metrics(task))
        extra_callbacks, fit_kwargs = _FIT_OPTIONS.get() or ([], {})
        callbacks = [*callbacks, *copy.deepcopy(extra_callbacks)]  # each trial gets fresh copies, as in KerasTuner
        if not custom_fit:
            if not fit_kwargs:
                default_fit(model, params, data, epochs, callbacks)
                return None
            model.fit(
                data.x_train,
                data.y_train,
                **{"validation_data": (data.x_val, data.y_val), "epochs": epochs, **fit_kwargs},
                callbacks=callbacks,
                verbose=0,
            )
            return None
        hp = HyperParameters(trial=_live_trial(params), values=params)
        # fit() gets the hp that build() filled, as under KerasTuner: get(), hp[...] and values see its params
        hp.values.update({k: v for k, v in params.items() if k != "family"})
        hp._names.update(hp.values)
        with _watching_inputs(model, data.x_train) as watch:
            returned = _call_fit(hypermodel, hp, model, data, epochs, callbacks, fit_kwargs)
        drawn = {k: v for k, v in hp.values.items() if k not in params}
        if drawn and isinstance(params, dict):
            params.update(drawn)  # params drawn inside fit join the trial's record
        return FitResult(objective=returned, model=watch.model_with_preprocessing(model, data.x_train))

    def compile_model(model: Any, params: Mapping[str, Any], spec: Any) -> Any:
        """The hypermodel's own ``optimizer``/``loss``/``learning_rate`` hps are its business, never automl's."""
        if model in _COMPILED:
            return model  # ``fit`` compiles it with the build's own optimizer and loss
        from automl.training import compile_model as default_compile

        return default_compile(model, {}, spec.task)

    return Family(
        name=name,
        build=build_model,
        data_kinds=ANY_KIND,
        description=description,
        fit=fit_model,
        compile=compile_model,
    )


def family_for(name: str) -> Family:
    """A family by the name a study recorded: a registered one, or ``hypermodel:MODULE:NAME``."""
    from automl import families

    if name.startswith(PREFIX):
        return load_hypermodel(name)[0]
    return families.get(name)


def unscaled_targets(dataset: Any) -> Any:
    """The data set with regression targets as they are: a hypermodel's head (a relu, a sigmoid) was written for
    the target's own units, as under KerasTuner, so automl does not standardize them behind its back."""
    import dataclasses

    return dataclasses.replace(dataset, y_scale=None) if dataset.y_scale is not None else dataset


ONE_HOT_LOSSES = ("categorical_crossentropy", "categoricalcrossentropy", "categorical_focal_crossentropy")


def expects_one_hot(loss: Any) -> bool:
    """Whether a compiled loss (a name, a function or a ``Loss``) takes one-hot labels."""
    name = loss if isinstance(loss, str) else getattr(loss, "name", None) or getattr(loss, "__name__", "")
    return str(name).lower() in ONE_HOT_LOSSES


def one_hot_labels(data: Any, n_classes: int) -> Any:
    """The training data with one-hot ``y_train`` and ``y_val`` (float32)."""
    import dataclasses

    import numpy as np

    def encode(y: Any) -> Any:
        return np.eye(n_classes, dtype="float32")[np.asarray(y).astype("int64").reshape(-1)]

    return dataclasses.replace(data, y_train=encode(data.y_train), y_val=encode(data.y_val))


def _live_trial(params: Mapping[str, Any]) -> Any:
    """The trial whose ``suggest`` drew ``params``, if it is the last one here; None when replaying a record."""
    live = _LIVE_TRIAL.get()
    if live is None:
        return None
    trial, drawn = live
    return trial if all(params.get(k, _MISSING) == v for k, v in drawn.items()) else None


_DUPLICATE = re.compile(r"got multiple values for (?:keyword )?argument '(\w+)'")


class InputWatch:
    """What a ``HyperModel.fit`` did to its ``x`` before training: the Keras layers it called on it, in order.

    ``fit`` runs with every ``Layer.__call__`` recorded whose input is the training ``x`` (or the output of a layer
    recorded before), and with the model's ``fit`` recording the ``x`` it trains on.
    """

    def __init__(self) -> None:
        self.calls: dict[int, tuple[Any, Any, Any]] = {}  # id(output) -> (layer, input, output): kept alive
        self.trained_on: list[Any] = []

    def chain(self, x: Any, raw: Any) -> list[Any] | None:
        """The layers that turned ``raw`` into ``x`` (first to last); None when ``x`` did not come from them."""
        layers: list[Any] = []
        while x is not raw:
            call = self.calls.get(id(x))
            if call is None or call[2] is not x:
                return None
            layers.insert(0, call[0])
            x = call[1]
        return layers

    def model_with_preprocessing(self, model: Any, raw: Any) -> Any:
        """``model`` with the layers ``fit`` applied to ``x`` in front of it; None when it trained on ``x`` as is.

        Raises ``AutoMLError`` when ``fit`` trained on inputs changed some other way (numpy arithmetic, slicing):
        the registered model, which takes raw inputs, would then predict on other inputs than it learned from.
        """
        import keras
        import numpy as np

        chains = []
        for x in self.trained_on:
            if x is raw or not hasattr(x, "shape"):  # a tf.data pipeline or a generator: nothing to compare
                continue
            layers = self.chain(x, raw)
            if layers is None:
                if tuple(x.shape) == tuple(raw.shape) and np.array_equal(np.asarray(x), raw):
                    continue  # a copy of the data (astype, asarray)
                raise AutoMLError(
                    "HyperModel.fit trains on inputs it changed without a Keras layer (numpy arithmetic, slicing, "
                    "...): the registered model, which takes raw inputs, cannot repeat that; call a Keras layer on "
                    "x in fit (e.g. layers.Normalization()), or do it inside build()"
                )
            chains.append(layers)
        if not chains or not chains[0]:
            return None
        if any([id(layer) for layer in c] != [id(layer) for layer in chains[0]] for c in chains):
            raise AutoMLError("HyperModel.fit trains on inputs preprocessed in more than one way; use one")
        inputs = keras.Input(shape=tuple(raw.shape[1:]), dtype=str(raw.dtype), name="fit_inputs")
        x = inputs
        for layer in chains[0]:
            x = layer(x)
        return keras.Model(inputs, model(x), name=f"{model.name}_with_fit_preprocessing")


@contextlib.contextmanager
def _watching_inputs(model: Any, raw: Any) -> Iterator[InputWatch]:
    """Record, while ``HyperModel.fit`` runs, the layers it calls on ``raw`` and the ``x`` that ``model.fit`` gets."""
    import keras

    watch = InputWatch()
    layer_call = keras.layers.Layer.__call__
    model_fit = model.fit

    def recording_call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        outputs = layer_call(layer, *args, **kwargs)
        source = args[0] if args else kwargs.get("inputs")
        if source is raw or (id(source) in watch.calls and watch.calls[id(source)][2] is source):
            watch.calls[id(outputs)] = (layer, source, outputs)
        return outputs

    def recording_fit(*args: Any, **kwargs: Any) -> Any:
        watch.trained_on.append(args[0] if args else kwargs.get("x"))
        return model_fit(*args, **kwargs)

    keras.layers.Layer.__call__ = recording_call
    object.__setattr__(model, "fit", recording_fit)  # this model only; Keras's attribute tracking is skipped
    try:
        yield watch
    finally:
        keras.layers.Layer.__call__ = layer_call
        object.__delattr__(model, "fit")


def _call_fit(
    hypermodel: Any,
    hp: HyperParameters,
    model: Any,
    data: Any,
    epochs: int,
    callbacks: list[Any],
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """``HyperModel.fit(hp, model, x, y, **kwargs)`` as KerasTuner's tuner calls it; returns what it returns.

    A ``fit`` that sets ``epochs`` (or ``batch_size``...) itself, as in KerasTuner's docs, wins over ours.
    """
    kwargs: dict[str, Any] = {
        "validation_data": (data.x_val, data.y_val),
        "epochs": epochs,
        **(extra or {}),
        "callbacks": callbacks,
        "verbose": 0,
    }
    for _ in range(len(kwargs)):
        try:
            return hypermodel.fit(hp, model, data.x_train, data.y_train, **kwargs)
        except TypeError as exc:
            match = _DUPLICATE.search(str(exc))
            if match is None or match.group(1) not in kwargs or match.group(1) == "callbacks":
                raise
            kwargs.pop(match.group(1))
    raise RuntimeError("HyperModel.fit refused every keyword argument")


def _import_target(spec: str) -> Any:
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise AutoMLError(f"--hypermodel '{spec}': expected MODULE:NAME or path/to/file.py:NAME")
    try:
        if module_name.endswith(".py") or "/" in module_name:
            path = Path(module_name)
            if not path.is_file():
                raise AutoMLError(f"--hypermodel '{spec}': file {path} not found")
            unique = "automl_hypermodel_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
            loader = importlib.util.spec_from_file_location(unique, path)
            if loader is None or loader.loader is None:
                raise AutoMLError(f"--hypermodel '{spec}': {path} is not a Python module")
            module = importlib.util.module_from_spec(loader)
            sys.modules[unique] = module
            loader.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))  # as ``python -m`` would: modules beside the user
            module = importlib.import_module(module_name)
    except AutoMLError:
        raise
    except Exception as exc:  # an import runs user code, which may raise anything
        raise AutoMLError(f"--hypermodel '{spec}': cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    if not hasattr(module, attribute):
        raise AutoMLError(f"--hypermodel '{spec}': {module_name} has no attribute '{attribute}'")
    return getattr(module, attribute)


def as_hypermodel(target: Any, spec: str) -> Any:
    """A build function, a ``HyperModel`` subclass (instantiated without arguments) or instance -> a hypermodel."""
    if inspect.isclass(target):
        if not callable(getattr(target, "build", None)):
            raise AutoMLError(f"--hypermodel '{spec}': class {target.__name__} has no build(hp) method")
        try:
            return target()
        except TypeError as exc:
            raise AutoMLError(
                f"--hypermodel '{spec}': {target.__name__}() needs arguments ({exc}); point at an instance instead"
            ) from None
    if callable(getattr(target, "build", None)):
        return target
    if callable(target):
        return _BuildFunction(target)
    raise AutoMLError(f"--hypermodel '{spec}': {type(target).__name__} is neither build(hp) nor a HyperModel")


def _source_text(spec: str, target: Any) -> str:
    target = getattr(target, "__wrapped__", target)
    try:
        code = inspect.getsource(target if inspect.isclass(target) or inspect.isfunction(target) else type(target))
    except (OSError, TypeError):
        code = repr(target)
    body = "\n".join(f"  {line}" for line in code.rstrip().splitlines())
    return f"hypermodel: {spec}\nsource: |\n{body}\n"


_IN_MEMORY: dict[str, tuple[Family, HyperModelSpace]] = {}


def register_hypermodel(
    spec: str,
    target: Any,
    overrides: Mapping[str, tuple[str, dict[str, Any]]] | None = None,
    tune_new_entries: bool = True,
) -> tuple[Family, HyperModelSpace]:
    """Make a hypermodel object of this Python session (``automl.Tuner``'s) loadable as ``spec``."""
    import dataclasses

    spec = spec.removeprefix(PREFIX)
    family, space = _family_and_space(spec, target)
    space = dataclasses.replace(space, overrides=dict(overrides or {}), tune_new_entries=tune_new_entries)
    _IN_MEMORY[spec] = family, space
    return family, space


def load_hypermodel(spec: str) -> tuple[Family, HyperModelSpace]:
    """``MODULE:NAME`` (or ``file.py:NAME``) -> the family to train it and the space that samples it.

    Cached by ``spec``: the registry, the runner and a resumed study all get the same hypermodel object.
    """
    spec = spec.removeprefix(PREFIX)
    if spec in _IN_MEMORY:
        return _IN_MEMORY[spec]
    if spec.startswith("tuner:"):
        raise AutoMLError(
            f"hypermodel '{spec}' belongs to an automl.Tuner and lives in the Python session that ran it; "
            f"use automl.Tuner(..., project_name='{spec.removeprefix('tuner:')}') there"
        )
    return _import_hypermodel(spec)


@functools.lru_cache(maxsize=32)
def _import_hypermodel(spec: str) -> tuple[Family, HyperModelSpace]:
    return _family_and_space(spec, _import_target(spec))


def _family_and_space(spec: str, target: Any) -> tuple[Family, HyperModelSpace]:
    hypermodel = as_hypermodel(target, spec)
    doc = inspect.getdoc(target) or ""
    description = doc.splitlines()[0] if doc else f"KerasTuner hypermodel {spec}"
    name = f"{PREFIX}{spec}"
    family = make_family(name, hypermodel, description)
    space = HyperModelSpace(source=spec, text=_source_text(spec, target), hypermodel=hypermodel, family=name)
    return family, space


__all__ = [
    "ANY_KIND",
    "HyperModelSpace",
    "HyperParameters",
    "as_hypermodel",
    "fit_options",
    "load_hypermodel",
    "make_family",
    "overrides_fit",
    "register_hypermodel",
]
