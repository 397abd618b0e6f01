"""``automl families``, ``automl trials`` and ``automl best``: read-only views of spaces and studies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.errors import handle_errors
from cli.options import Home, Json, Storage, Study

families_app = typer.Typer(help="List the families, or show one family's search space.", no_args_is_help=False)


@families_app.callback(invoke_without_command=True)
@handle_errors
def families(ctx: typer.Context, as_json: Json = False) -> None:
    """List the registered families and the data each takes."""
    if ctx.invoked_subcommand is not None:
        return
    from automl import families as registry
    from automl.logs import import_backend_quietly

    import_backend_quietly()

    rows: list[dict[str, Any]] = []
    for name in registry.names():
        family = registry.get(name)
        rows.append({"name": name, "data": sorted(family.data_kinds), "description": family.description})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("family", "data", "description")
    for row in rows:
        table.add_row(row["name"], ", ".join(row["data"]), row["description"])
    Console().print(table)


@families_app.command("show")
@handle_errors
def show(
    name: Annotated[str, typer.Argument(help="Family name.")],
    as_json: Json = False,
    raw: Annotated[bool, typer.Option("--yaml", help="Print the YAML file itself.")] = False,
) -> None:
    """Print a family's default search space."""
    from automl import families as registry
    from automl.logs import import_backend_quietly

    import_backend_quietly()
    from automl.spaces import load_default_space

    registry.get(name)
    space = load_default_space(name)
    if raw:
        print(space.text, end="")
        return
    rows = space.describe()
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table("param", "type", "range / choices", "active when", title=f"{name}: {space.source}")
    for row in rows:
        spec = ", ".join(f"{k}={v}" for k, v in row["range"].items())
        when = ", ".join(f"{k} in {v}" for k, v in (row["when"] or {}).items())
        table.add_row(row["name"], row["type"], spec, when or "always")
    Console().print(table)


def _check_local_store(home: str | None, storage: str | None) -> str:
    from automl.config import resolve_store
    from automl.errors import StoreError

    store = resolve_store(home, None, storage)
    if store.storage.startswith("sqlite:///") and not Path(store.storage.removeprefix("sqlite:///")).is_file():
        raise StoreError(f"no Optuna storage at {store.storage} (run a search first, or pass --home/--storage)")
    return store.storage


def _compact(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _trial_row(trial: Any) -> dict[str, Any]:
    from automl.record import read_trial, trial_params

    duration = trial.duration.total_seconds() if trial.duration else None
    attrs = read_trial(trial)
    return {
        "number": trial.number,
        "state": trial.state.name,
        "origin": attrs.origin or "search",
        "value": trial.value,
        "duration_s": duration,
        "params": trial_params(trial),
        "error": attrs.error,
    }


@handle_errors
def trials(study: Study, as_json: Json = False, home: Home = None, storage: Storage = None) -> None:
    """A table of the study's trials: number, state, value, duration and params."""
    from automl.study import load_study

    loaded = load_study(study, _check_local_store(home, storage))
    rows = [_trial_row(t) for t in loaded.get_trials(deepcopy=False)]
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    from automl.record import read_study

    metric = read_study(loaded).metric or "value"
    table = Table("#", "state", "origin", f"val_{metric}", "duration", "params", title=f"study {study}")
    for row in rows:
        params = " ".join(f"{k}={_compact(v)}" for k, v in row["params"].items() if k != "family")
        value = "-" if row["value"] is None else f"{row['value']:.5g}"
        duration = "-" if row["duration_s"] is None else f"{row['duration_s']:.1f}s"
        table.add_row(str(row["number"]), row["state"], row["origin"], value, duration, params)
    Console().print(table)


@handle_errors
def best(study: Study, as_json: Json = False, home: Home = None, storage: Storage = None) -> None:
    """The best trial: number, value, params, and the registered model URI."""
    from automl.errors import AutoMLError
    from automl.study import best_trial, load_study

    loaded = load_study(study, _check_local_store(home, storage))
    from automl.config import resolve_store
    from automl.sqlite_tuning import check_readable

    registry = resolve_store(home, None, storage).tracking_uri
    if registry.startswith("sqlite:///"):  # the model URI it prints lives there: a corrupt registry is one line
        check_readable(Path(registry.removeprefix("sqlite:///")), "MLflow store")
    try:
        trial = best_trial(loaded)
    except ValueError:
        raise AutoMLError(f"study '{study}' has no completed trial yet") from None
    from automl.record import read_study, read_trial, trial_params

    record = read_study(loaded)
    registered = record.model
    data: dict[str, Any] = {
        "study": study,
        "number": trial.number,
        "value": trial.value,
        "metric": record.monitor if record.metric else "val_value",
        "direction": loaded.direction.name.lower(),
        "params": trial_params(trial),
        "model_uri": registered.uri if registered else None,
        "champion_uri": f"models:/{registered.register_name}@champion" if registered else None,
        "registration_error": record.registration_error,
        "test_metrics": dict(registered.test_metrics) if registered else {},
        "mlflow_run_id": read_trial(trial).mlflow_run_id,
    }
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    console = Console()
    console.print(f"[bold]study {study}[/bold]: best trial #{data['number']}, {data['metric']} = {data['value']:.6g}")
    for key, value in data["params"].items():
        console.print(f"  {key} = {_compact(value)}")
    for key, value in data["test_metrics"].items():
        console.print(f"  {key} = {value:.6g}")
    model_uri = data["model_uri"]
    if model_uri:
        console.print(f"  model: {model_uri}  (alias: {data['champion_uri']})")
    else:
        console.print(f"  model: none registered ({data['registration_error'] or 'the search has not registered one'})")
    if model_uri and data["registration_error"]:
        console.print(f"  the last search did not register a new one: {data['registration_error']}")
