"""Demo data sets that ship inside installed packages (nothing is downloaded): ``--data demo:NAME``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from automl.data import Dataset, register_loader
from automl.errors import DataError

DemoFactory = Callable[..., Dataset]
DEMOS: dict[str, DemoFactory] = {}


def register_demo(name: str) -> Callable[[DemoFactory], DemoFactory]:
    """Register ``demo:NAME``."""

    def decorate(factory: DemoFactory) -> DemoFactory:
        DEMOS[name] = factory
        return factory

    return decorate


@register_loader(lambda source: source.startswith("demo:"))
def load_demo(source: str, **options: Any) -> Dataset:
    name = source.removeprefix("demo:")
    if name not in DEMOS:
        raise DataError(f"{source}: unknown demo data set (available: {', '.join(sorted(DEMOS))})")
    return DEMOS[name](**options)


def _sklearn_table(loader: str, with_names: bool, **options: Any) -> Dataset:
    import sklearn.datasets

    from automl.data.tabular import table_dataset

    bunch = getattr(sklearn.datasets, loader)(as_frame=True)
    frame: pd.DataFrame = bunch.frame.copy()
    if with_names:
        frame["target"] = [str(bunch.target_names[i]) for i in frame["target"]]
    options = {**options, "target": "target"}
    return table_dataset(frame, name=f"demo:{loader.removeprefix('load_')}", **options)


def _table_demo(loader: str, with_names: bool) -> DemoFactory:
    def factory(**options: Any) -> Dataset:
        options.pop("target", None)
        return _sklearn_table(loader, with_names, **options)

    return factory


for _name, _loader, _names in [
    ("digits", "load_digits", False),
    ("wine", "load_wine", True),
    ("breast_cancer", "load_breast_cancer", True),
    ("diabetes", "load_diabetes", False),
    ("iris", "load_iris", True),
]:
    register_demo(_name)(_table_demo(_loader, _names))
