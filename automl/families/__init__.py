"""The family registry: ``get(name)`` -> ``Family``; ``names()`` lists the registered families.

A family is one module here plus one ``search_spaces/<name>.yaml``. Nothing else names a family.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from automl.errors import AutoMLError, DataError

__all__ = ["Family", "get", "names"]

BuildFn = Callable[[Mapping[str, Any], Any], Any]
FitFn = Callable[..., Any]


@dataclass(frozen=True)
class Family:
    """How to build (and optionally train) one architecture family from plain param values."""

    name: str
    build: BuildFn
    data_kinds: frozenset[str]
    description: str = ""
    fit: FitFn | None = None

    def check_data(self, kind: str, source: str) -> None:
        """Refuse data this family cannot take, e.g. a CNN on a flat table."""
        if kind not in self.data_kinds:
            raise DataError(
                f"family '{self.name}' does not fit {kind} data from {source} "
                f"(it takes: {', '.join(sorted(self.data_kinds))})"
            )


def names() -> list[str]:
    """Registered families: modules in this package that have a shipped search space."""
    from automl.spaces import default_space_names

    modules = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return sorted(modules & set(default_space_names()))


def get(name: str | Family) -> Family:
    """Look a family up by name; an unknown name raises ``AutoMLError`` listing the valid ones."""
    if isinstance(name, Family):
        return name
    if name.startswith("hypermodel:"):
        from automl.hypermodel import load_hypermodel

        return load_hypermodel(name)[0]
    valid = names()
    if name not in valid:
        raise AutoMLError(f"unknown family '{name}' (valid: {', '.join(valid)})")
    family = importlib.import_module(f"{__name__}.{name}").FAMILY
    if not isinstance(family, Family):
        raise TypeError(f"{__name__}.{name}.FAMILY is not a Family")
    return family
