"""Options shared by the commands, defined once (each also reads an environment variable)."""

from __future__ import annotations

from typing import Annotated

import typer

Home = Annotated[
    str | None,
    typer.Option(
        "--home",
        envvar="AUTOML_HOME",
        help="Store directory (mlflow.db, artifacts/, optuna.db). Default: ./automl-runs.",
        show_default=False,
    ),
]
TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        envvar="AUTOML_TRACKING_URI",
        help="MLflow tracking + registry URI (default: sqlite:///HOME/mlflow.db).",
        show_default=False,
    ),
]
Storage = Annotated[
    str | None,
    typer.Option(
        "--storage",
        envvar="AUTOML_STORAGE",
        help="Optuna storage: sqlite:///..., postgresql://..., or journal:PATH (default: HOME/optuna.db).",
        show_default=False,
    ),
]
Study = Annotated[str, typer.Option("--study", help="Study name (also the MLflow experiment name).")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
