"""Read and validate a search-space YAML file; turn it into params with Optuna's define-by-run API."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from automl.errors import SpaceError

logger = logging.getLogger(__name__)

TASKS = ("classification", "regression")
CONTEXT_KEYS = ("task", "kind")  # conditions may name the task or the data kind (table, image, text, ...)
N_TRAIN = "<n_train>"  # context entry a param may read: the training split's size
Choice = str | int | float | bool | None


class TrialLike(Protocol):
    """The part of ``optuna.Trial`` (and ``FixedTrial``) that a space uses."""

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = ..., log: bool = ...
    ) -> float: ...
    def suggest_int(self, name: str, low: int, high: int, *, step: int = ..., log: bool = ...) -> int: ...
    def suggest_categorical(self, name: str, choices: Sequence[Choice]) -> Any: ...


def _listify_conditions(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: v if isinstance(v, list) else [v] for k, v in value.items()}
    return value


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid")
    when: dict[str, list[Choice]] | None = None
    help: str | None = None
    # ``searched: false``: the param keeps ``default`` unless the user pins it (``--set``); e.g. label-changing
    # augmentation that a user turns on knowingly
    searched: bool = True
    default: Choice = None

    @field_validator("when", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return _listify_conditions(value)

    @model_validator(mode="after")
    def _check_default(self) -> _Param:
        if not self.searched:
            self.check_value(self.default)
        return self

    def check_value(self, value: Any) -> None:
        """Raise ``ValueError`` when ``value`` is not one this param can take."""
        raise NotImplementedError


class Bounds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    low: float
    high: float


class _RangeParam(_Param):
    """A numeric param whose range may depend on an earlier param: ``by: {optimizer: {sgd: {low, high}}}``."""

    low: float
    high: float
    log: bool = False
    by: dict[str, dict[str, Bounds]] | None = None

    @model_validator(mode="after")
    def _check_by(self) -> _RangeParam:
        if self.by is not None and len(self.by) != 1:
            raise ValueError("by: name exactly one earlier param")
        for bounds in self._all_bounds()[1:]:
            _check_range(bounds.low, bounds.high, self.log, None)
        return self

    def _all_bounds(self) -> list[Bounds]:
        extra = [b for table in (self.by or {}).values() for b in table.values()]
        return [Bounds(low=self.low, high=self.high), *extra]

    def bounds(self, values: Mapping[str, Any]) -> tuple[Any, Any]:
        """``(low, high)`` given the values chosen so far."""
        for parent, table in (self.by or {}).items():
            chosen = table.get(str(values.get(parent)))
            if chosen is not None:
                return self._cast(chosen.low), self._cast(chosen.high)
        return self._cast(self.low), self._cast(self.high)

    def _cast(self, value: float) -> Any:
        return value

    def check_value(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{value!r} is not a number")
        if not any(b.low <= value <= b.high for b in self._all_bounds()):
            raise ValueError(f"{value!r} is outside [{self.low}, {self.high}]")

    def extremes(self, task: str) -> list[Any]:
        return [self._cast(self.low), self._cast(self.high)]


class FloatParam(_RangeParam):
    type: Literal["float"]
    step: float | None = None

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.step)
        return self

    def suggest(self, trial: TrialLike, name: str, task: str, values: Mapping[str, Any]) -> float:
        low, high = self.bounds(values)
        return trial.suggest_float(name, low, high, log=self.log, step=self.step)

    def coerce(self, raw: str) -> float:
        return float(raw)


class IntParam(_RangeParam):
    type: Literal["int"]
    low: int
    high: int
    step: int = 1

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_range(self.low, self.high, self.log, self.step if self.step != 1 else None)
        return self

    def _cast(self, value: float) -> Any:
        return int(value)

    def suggest(self, trial: TrialLike, name: str, task: str, values: Mapping[str, Any]) -> int:
        low, high = self.bounds(values)
        return trial.suggest_int(name, low, high, log=self.log, step=self.step)

    def coerce(self, raw: str) -> int:
        return int(raw)

    def check_value(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{value!r} is not an integer")
        super().check_value(value)


class CategoricalParam(_Param):
    type: Literal["categorical"]
    choices: list[Choice] | dict[Literal["classification", "regression"], list[Choice]]
    # numeric choices above this share of the training rows are left out (e.g. batch sizes on a small data set);
    # the smallest choice always stays
    max_train_fraction: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> CategoricalParam:
        lists = self.choices.values() if isinstance(self.choices, dict) else [self.choices]
        for options in lists:
            if not options:
                raise ValueError("choices is empty")
            if len(set(map(repr, options))) != len(options):
                raise ValueError("choices has duplicates")
        return self

    def options(self, task: str) -> list[Choice]:
        if isinstance(self.choices, dict):
            if task not in self.choices:
                raise SpaceError(f"has no choices for task '{task}'")
            return self.choices[task]
        return self.choices

    def allowed(self, task: str, n_train: int | None) -> list[Choice]:
        """The choices a training split of ``n_train`` rows allows (all of them without ``max_train_fraction``)."""
        if self.max_train_fraction is None or not n_train:
            return self.options(task)
        return list(self.capped(self.max_train_fraction, task, n_train))

    def capped(self, fraction: float, task: str, n_train: int) -> list[float]:
        """The numeric choices up to ``fraction`` of ``n_train`` rows; the smallest always stays."""
        numbers = [o for o in self.options(task) if isinstance(o, int | float)]
        limit = max(fraction * n_train, min(numbers))
        return [o for o in numbers if o <= limit]

    def suggest(self, trial: TrialLike, name: str, task: str, values: Mapping[str, Any]) -> Any:
        return trial.suggest_categorical(name, self.allowed(task, values.get(N_TRAIN)))

    def check_value(self, value: Any) -> None:
        lists = self.choices.values() if isinstance(self.choices, dict) else [self.choices]
        if not any(value == o and type(value) is type(o) for options in lists for o in options):
            valid = sorted({str(o) for options in lists for o in options})
            raise ValueError(f"{value!r} is not one of {', '.join(valid)}")

    def coerce(self, raw: str) -> Any:
        lists = self.choices.values() if isinstance(self.choices, dict) else [self.choices]
        for options in lists:
            for option in options:
                if str(option).lower() == raw.lower():
                    return option
        valid = sorted({str(o) for options in lists for o in options})
        raise ValueError(f"'{raw}' is not one of {', '.join(valid)}")

    def extremes(self, task: str) -> list[Any]:
        return list(self.options(task))


class BoolParam(_Param):
    type: Literal["bool"]

    def suggest(self, trial: TrialLike, name: str, task: str, values: Mapping[str, Any]) -> bool:
        return bool(trial.suggest_categorical(name, [False, True]))

    def check_value(self, value: Any) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not a bool (true/false)")

    def coerce(self, raw: str) -> bool:
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"'{raw}' is not a bool (true/false)")

    def extremes(self, task: str) -> list[Any]:
        return [False, True]


AnyParam = FloatParam | IntParam | CategoricalParam | BoolParam
Param = Annotated[AnyParam, Field(discriminator="type")]
PARAM_TYPES: dict[str, type[AnyParam]] = {
    "float": FloatParam,
    "int": IntParam,
    "categorical": CategoricalParam,
    "bool": BoolParam,
}


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low > high:
        raise ValueError(f"low ({low}) > high ({high})")
    if log and low <= 0:
        raise ValueError(f"log scale needs low > 0 (got {low})")
    if step is not None and step <= 0:
        raise ValueError(f"step must be > 0 (got {step})")
    if log and step is not None:
        raise ValueError("log and step cannot be combined")


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise SpaceError(f"duplicate name '{key}' (line {key_node.start_mark.line + 1})")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class StartPoint(BaseModel):
    """A known-good configuration a new study tries first; ``when`` may restrict it to a task or data kind."""

    model_config = ConfigDict(extra="forbid")
    when: dict[Literal["task", "kind"], list[Choice]] | None = None
    params: dict[str, Choice]

    @field_validator("when", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return _listify_conditions(value)

    def applies(self, task: str, kind: str | None) -> bool:
        context = {"task": task, "kind": kind}
        return all(context[k] in allowed for k, allowed in (self.when or {}).items())


@dataclass(frozen=True)
class Space:
    """A validated search space: ordered params, each maybe conditional on earlier ones or on the task."""

    source: str
    text: str
    params: dict[str, AnyParam]
    family: str | None = None
    starts: tuple[StartPoint, ...] = ()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def is_active(self, name: str, values: Mapping[str, Any], task: str, kind: str | None = None) -> bool:
        """Whether ``name``'s conditions hold, given the values chosen so far (and the task and data kind)."""
        condition = self.params[name].when or {}
        context = {"task": task, "kind": kind}
        return all((values[k] if k in values else context.get(k, _MISSING)) in v for k, v in condition.items())

    def suggest(
        self,
        trial: TrialLike,
        task: str,
        fixed: Mapping[str, Any] | None = None,
        kind: str | None = None,
        n_train: int | None = None,
    ) -> dict[str, Any]:
        """Sample one flat params dict; inactive conditional params are left out, pinned ones kept.

        ``n_train`` (the training split's size) bounds params that declare ``max_train_fraction``.
        """
        fixed = fixed or {}
        values: dict[str, Any] = {}
        context = {N_TRAIN: n_train}
        for name, param in self.params.items():
            if not self.is_active(name, values, task, kind):
                continue
            try:
                if name in fixed:
                    values[name] = fixed[name]
                elif not param.searched:
                    values[name] = param.default
                else:
                    values[name] = param.suggest(trial, name, task, {**values, **context})
            except SpaceError as exc:
                raise SpaceError(f"{self.source}: param '{name}': {exc}") from None
        return values

    def start_points(
        self, task: str, kind: str | None, fixed: Mapping[str, Any] | None = None, n_train: int | None = None
    ) -> list[dict[str, Any]]:
        """The starting configurations that apply to this task and data kind, less the pinned params, once each.

        A choice that ``n_train`` rules out (``max_train_fraction``) becomes the largest one it allows.
        """
        fixed = fixed or {}
        points: list[dict[str, Any]] = []
        for start in self.starts:
            if not start.applies(task, kind):
                continue
            point = {k: v for k, v in start.params.items() if k not in fixed}
            for name, value in point.items():
                param = self.params[name]
                if isinstance(param, CategoricalParam) and param.max_train_fraction and n_train:
                    allowed = param.capped(param.max_train_fraction, task, n_train)
                    if isinstance(value, int | float) and value not in allowed:
                        point[name] = max(o for o in allowed if o <= value) if min(allowed) <= value else allowed[0]
            if point and point not in points:
                points.append(point)
        return points

    def parse_fixed(self, assignments: Sequence[str]) -> dict[str, Any]:
        """Turn ``--set name=value`` strings into typed pinned values."""
        fixed: dict[str, Any] = {}
        for item in assignments:
            name, sep, raw = item.partition("=")
            name = name.strip()
            if not sep or not name:
                raise SpaceError(f"--set '{item}': expected name=value")
            if name not in self.params:
                raise SpaceError(
                    f"--set '{item}': unknown param '{name}' in {self.source} (params: {', '.join(self.params)})"
                )
            try:
                fixed[name] = self.params[name].coerce(raw.strip())
            except ValueError as exc:
                raise SpaceError(f"--set '{item}': param '{name}': {exc}") from None
        return fixed

    def describe(self) -> list[dict[str, Any]]:
        """One row per param, for ``automl families show``."""
        rows = []
        for name, param in self.params.items():
            spec = param.model_dump(exclude_none=True, exclude={"help"})
            kind = spec.pop("type")
            when = spec.pop("when", None)
            searched = spec.pop("searched")
            default = spec.pop("default", None)
            if not searched:
                spec = {"fixed": default}
            rows.append({"name": name, "type": kind, "range": spec, "when": when, "help": param.help})
        return rows


class SearchSpace(Protocol):
    """What a search asks of a space: a YAML ``Space``, or a KerasTuner hypermodel's ``HyperModelSpace``."""

    @property
    def source(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def family(self) -> str | None: ...
    @property
    def params(self) -> Mapping[str, AnyParam]: ...
    @property
    def sha256(self) -> str: ...

    def suggest(
        self,
        trial: TrialLike,
        task: str,
        fixed: Mapping[str, Any] | None = None,
        kind: str | None = None,
        n_train: int | None = None,
    ) -> dict[str, Any]: ...
    def start_points(
        self, task: str, kind: str | None, fixed: Mapping[str, Any] | None = None, n_train: int | None = None
    ) -> list[dict[str, Any]]: ...
    def parse_fixed(self, assignments: Sequence[str]) -> dict[str, Any]: ...


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def parse_space(text: str, source: str) -> Space:
    """Validate the YAML text of a space; every error names ``source`` and the param."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except SpaceError as exc:
        raise SpaceError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise SpaceError(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("params"), Mapping) or not raw["params"]:
        raise SpaceError(f"{source}: expected a mapping with a non-empty 'params' mapping")
    unknown = set(raw) - {"family", "description", "params", "start"}
    if unknown:
        raise SpaceError(f"{source}: unknown top-level key(s): {', '.join(sorted(map(str, unknown)))}")
    params: dict[str, AnyParam] = {}
    for name, spec in raw["params"].items():
        params[str(name)] = _parse_param(str(name), spec, source, params)
    family = raw.get("family")
    starts = _parse_starts(raw.get("start") or [], source, params)
    return Space(source=source, text=text, params=params, family=str(family) if family else None, starts=starts)


def _parse_starts(raw: Any, source: str, params: Mapping[str, AnyParam]) -> tuple[StartPoint, ...]:
    """Validate ``start:``: a list of ``{when: ..., params: {name: value}}`` whose values the space can take."""
    if not isinstance(raw, list):
        raise SpaceError(f"{source}: start: expected a list of {{when, params}} mappings")
    starts = []
    for i, item in enumerate(raw):
        where = f"{source}: start[{i}]"
        try:
            start = StartPoint.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise SpaceError(f"{where}: {field + ': ' if field else ''}{first['msg']}") from None
        for name, value in start.params.items():
            if name not in params:
                raise SpaceError(f"{where}: unknown param '{name}'")
            if not params[name].searched:
                raise SpaceError(f"{where}: param '{name}' is not searched; pin it with --set instead")
            try:
                params[name].check_value(value)
            except ValueError as exc:
                raise SpaceError(f"{where}: param '{name}': {exc}") from None
        starts.append(start)
    return tuple(starts)


def _parse_param(name: str, spec: Any, source: str, earlier: Mapping[str, AnyParam]) -> AnyParam:
    where = f"{source}: param '{name}'"
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise SpaceError(f"{where}: expected a mapping with a 'type'")
    kind = spec["type"]
    if kind not in PARAM_TYPES:
        raise SpaceError(f"{where}: unknown type '{kind}' (valid: {', '.join(PARAM_TYPES)})")
    try:
        param = PARAM_TYPES[kind].model_validate(dict(spec))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"] if p not in PARAM_TYPES and not isinstance(p, int))
        message = first["msg"].removeprefix("Value error, ")
        raise SpaceError(f"{where}: {field + ': ' if field else ''}{message}") from None
    for key in param.when or {}:
        if key not in earlier and key not in CONTEXT_KEYS:
            raise SpaceError(f"{where}: condition on unknown param '{key}' (it must be defined above '{name}')")
    for key in getattr(param, "by", None) or {}:
        if key not in earlier:
            raise SpaceError(f"{where}: by: unknown param '{key}' (it must be defined above '{name}')")
    return param


def load_space(path: str | Path) -> Space:
    """Read and validate a space file given by the user."""
    file = Path(path)
    if not file.is_file():
        raise SpaceError(f"{file}: search-space file not found")
    return parse_space(file.read_text(encoding="utf-8"), str(file))


def default_space_names() -> list[str]:
    """Names of the search spaces shipped in the ``search_spaces`` package."""
    folder = resources.files("search_spaces")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_default_space(family: str) -> Space:
    """The shipped space of one family."""
    resource = resources.files("search_spaces") / f"{family}.yaml"
    if not resource.is_file():
        raise SpaceError(f"family '{family}' has no search space (search_spaces/{family}.yaml)")
    return parse_space(resource.read_text(encoding="utf-8"), f"search_spaces/{family}.yaml")


def space_for(config: Any) -> Space:
    """The space a search config names: its ``--space`` file, else its family's shipped one."""
    space = load_space(config.space) if config.space else load_default_space(config.family)
    if space.family and space.family != config.family and config.space:
        logger.info("space %s was written for family %s; using it with %s", config.space, space.family, config.family)
    return space


def pin_params(space: SearchSpace, fixed: dict[str, Any]) -> dict[str, Any]:
    """Typed pinned values: strings (from ``--set``) are parsed against the space."""
    strings = [f"{k}={v}" for k, v in fixed.items() if isinstance(v, str)]
    pinned = space.parse_fixed(strings)
    for name, value in fixed.items():
        # a hypermodel's params are known only once build(hp) runs: its space checks the pins there
        if isinstance(space, Space) and name not in space.params:
            raise SpaceError(f"--set '{name}': unknown param (params: {', '.join(space.params)})")
        pinned.setdefault(name, value)
    return pinned
