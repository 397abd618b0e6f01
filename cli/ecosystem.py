"""``automl report``, ``reproduce``, ``promote``, ``lint`` and ``dashboard``: around a study, not inside it."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

from cli.errors import handle_errors
from cli.inspect import _check_local_store
from cli.options import Home, Json, Storage, Study, TrackingUri

Trial = Annotated[int, typer.Option("--trial", help="Trial number (see `automl trials`).")]
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def _load(study: str, home: str | None, storage: str | None) -> Any:
    from automl.study import load_study

    return load_study(study, _check_local_store(home, storage))


@handle_errors
def report(
    study: Study,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Also write the plots into this folder.")] = None,
    top: Annotated[int, typer.Option("--top", help="Trials drawn in the learning curves.")] = 5,
    html: Annotated[
        bool | None,
        typer.Option("--html/--no-html", help="Interactive report.html (needs plotly; default: when installed)."),
    ] = None,
    home: Home = None,
    tracking_uri: TrackingUri = None,
    storage: Storage = None,
) -> None:
    """Plot a study (history, importances, parallel coordinates, learning curves) onto its MLflow parent run."""
    from automl.config import resolve_store
    from automl.errors import AutoMLError, StoreError
    from automl.report import ARTIFACT_DIR, html_available, log_report, parent_run_id, write_report
    from automl.sqlite_tuning import store_is_read_only
    from automl.tracking import Tracker

    if top < 1:
        raise AutoMLError(f"--top must be at least 1 (got {top})")
    if html and not html_available():
        raise AutoMLError("--html needs plotly: pip install 'automl[report]'")
    loaded = _load(study, home, storage)
    store = resolve_store(home, tracking_uri, storage)
    run_id = parent_run_id(loaded)
    if output and store_is_read_only(store):  # a finished store on a read-only mount: the files only
        paths = write_report(loaded, output, top, html)
        if not paths:
            raise AutoMLError(f"study '{study}' has no completed trial to plot")
        for path in paths:
            print(f"{path} (the store is read-only: not attached to run {run_id})")
        return
    tracker = Tracker(store, study)
    if not tracker.run_tags(run_id):
        raise StoreError(f"the MLflow parent run {run_id} of study '{study}' is not in {store.tracking_uri}")
    paths = log_report(loaded, tracker, output, top, html)
    if not paths:
        raise AutoMLError(f"study '{study}' has no completed trial to plot")
    for path in paths:
        where = f" and {path}" if output else ""
        print(f"{ARTIFACT_DIR}/{path.name} -> run {run_id}{where}")


def _print_reproduction(result: Any) -> None:
    console = Console()
    verdict = "[green]matches[/green]" if result.matches else "[red]does not match[/red]"
    console.print(f"[bold]study {result.study}, trial {result.trial}[/bold] ({result.family}, seed {result.seed})")
    console.print(f"  recorded   {result.metric} = {result.recorded:.9g}")
    reproduced = "-" if result.reproduced is None else f"{result.reproduced:.9g}"
    console.print(f"  reproduced {result.metric} = {reproduced}")
    difference = "-" if result.difference is None else f"{result.difference:.3g}"
    gap = "-" if result.history_max_difference is None else f"{result.history_max_difference:.3g}"
    console.print(f"  |difference| = {difference}; largest per-epoch gap (any metric) = {gap}")
    console.print(f"  {verdict} within {result.tolerance:g} (deterministic ops: {result.deterministic})")
    if result.space_matches is False:
        console.print("[yellow]  the recorded space text does not hash to the recorded space_sha256[/yellow]")
    for name, (before, now) in result.version_changes.items():
        console.print(f"[yellow]  {name}: recorded {before}, now {now}[/yellow]")


@handle_errors
def reproduce(
    study: Study,
    trial: Trial,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Largest accepted |difference|.")] = 1e-6,
    deterministic: Annotated[
        bool | None,
        typer.Option(
            "--deterministic/--no-deterministic",
            help="TensorFlow's deterministic kernels (default: as the study ran).",
        ),
    ] = None,
    as_json: Json = False,
    home: Home = None,
    tracking_uri: TrackingUri = None,
    storage: Storage = None,
) -> None:
    """Retrain one trial from its record alone and compare its metric with the recorded one (exit 1 if apart)."""
    from automl.logs import import_backend_quietly
    from automl.reproduce import reproduce as run_reproduce

    _check_local_store(home, storage)
    import_backend_quietly()
    result = run_reproduce(study, trial, home, tracking_uri, storage, tolerance, deterministic)
    if as_json:
        print(json.dumps(asdict(result), indent=2, default=str))
    else:
        _print_reproduction(result)
    if not result.matches:
        raise typer.Exit(1)


@handle_errors
def promote(
    study: Study,
    trial: Trial,
    register_name: Annotated[
        str | None, typer.Option("--register-name", help="Registered model name (default: the study's).")
    ] = None,
    as_json: Json = False,
    home: Home = None,
    tracking_uri: TrackingUri = None,
    storage: Storage = None,
) -> None:
    """Register one trial's model (its checkpoint, else retrained) and move the `champion` alias to it."""
    from automl.logs import import_backend_quietly
    from automl.reproduce import promote as run_promote

    _check_local_store(home, storage)
    import_backend_quietly()
    result = run_promote(study, trial, home, tracking_uri, storage, register_name)
    if as_json:
        print(json.dumps(asdict(result), indent=2, default=str))
        return
    console = Console()
    console.print(f"[bold]trial {result.trial}[/bold] -> {result.model_uri} ({result.weights})")
    console.print(f"  {result.champion_uri} points at it")
    for key, value in result.test_metrics.items():
        console.print(f"  {key} = {value:.6g}")


def _parse_shape(text: str | None) -> tuple[int, ...] | None:
    from automl.errors import AutoMLError

    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise AutoMLError(f"--shape '{text}': expected sizes like 32,32,3") from None
    if not shape or min(shape) < 1:
        raise AutoMLError(f"--shape '{text}': expected sizes like 32,32,3")
    return shape


@handle_errors
def lint(
    family: Annotated[str, typer.Option("--family", "-f", help="Architecture family (see `automl families`).")],
    space: Annotated[str | None, typer.Option("--space", help="YAML file replacing the family's space.")] = None,
    data: Annotated[
        str | None, typer.Option("--data", help="Lint on this data's real input shape (default: a tiny made-up one).")
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="Target column of a table (with --data).")] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Made-up input kind: table, image, sequence, text or series.")
    ] = None,
    task: Annotated[str | None, typer.Option("--task", help="classification or regression.")] = None,
    shape: Annotated[str | None, typer.Option("--shape", help="Made-up input shape, e.g. 64,64,3.")] = None,
    set_values: Annotated[list[str] | None, typer.Option("--set", help="Pin a param: name=value (repeatable).")] = None,
    as_json: Json = False,
) -> None:
    """Build every branch of a space at its extreme values on a tiny input: params and memory per branch."""
    from automl import families
    from automl.config import SearchConfig, Task
    from automl.errors import AutoMLError
    from automl.lint import default_kind, lint_space, synthetic_spec
    from automl.logs import import_backend_quietly
    from automl.spaces import load_default_space, load_space

    if task not in (None, "classification", "regression"):
        raise AutoMLError(f"--task '{task}' is not one of classification, regression")
    chosen = families.get(family)
    loaded = load_space(space) if space else load_default_space(family)
    fixed = loaded.parse_fixed(set_values or [])
    import_backend_quietly()
    if data is not None:
        from automl.data import load_dataset

        config = SearchConfig(data=data, family=family, target=target, task=cast("Task | None", task))  # checked above
        spec = load_dataset(data, **config.data_options()).spec
        chosen.check_data(spec.kind, data)
    else:
        made_up = kind or default_kind(chosen.data_kinds)
        chosen.check_data(made_up, f"--kind {made_up}")
        spec = synthetic_spec(made_up, task, _parse_shape(shape))
    result = lint_space(chosen, loaded, spec, fixed)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return
    table = Table(
        "branch",
        "params",
        "batch",
        "weights",
        "grads+optimizer",
        "activations",
        "total",
        title=f"{result.family} on {result.kind} {result.input_shape} ({result.task}): {result.space}",
    )
    for branch in result.branches:
        table.add_row(
            branch.label,
            f"{branch.n_params:,}",
            str(branch.batch_size),
            _size(branch.weights_bytes),
            _size(branch.training_state_bytes),
            _size(branch.activations_bytes),
            _size(branch.total_bytes),
        )
    console = Console()
    console.print(table)
    console.print(
        f"{len(result.branches)} branches build; the largest ({result.largest.label}) needs about "
        f"{_size(result.largest.total_bytes)}"
    )


@handle_errors
def dashboard(
    study: Study,
    port: Annotated[int, typer.Option("--port", help="Port of optuna-dashboard.")] = 8080,
    host: Annotated[
        str, typer.Option("--host", help="Interface to bind; anything but loopback exposes the study to the network.")
    ] = "127.0.0.1",
    home: Home = None,
    storage: Storage = None,
) -> None:
    """Serve optuna-dashboard over the study's Optuna storage (bound to 127.0.0.1 unless --host says otherwise)."""
    from automl.errors import AutoMLError
    from automl.study import open_storage

    try:
        import optuna_dashboard
    except ImportError:
        raise AutoMLError("optuna-dashboard is not installed: pip install 'automl[dashboard]'") from None
    loaded = _load(study, home, storage)
    url = _check_local_store(home, storage)
    if host not in LOOPBACK:
        print(f"automl: warning: the dashboard on {host} exposes the study to the network", file=sys.stderr)
    study_id = getattr(loaded, "_study_id", None)
    page = f"http://{host}:{port}/dashboard" + (f"/studies/{study_id}" if study_id is not None else "")
    print(f"optuna-dashboard on {page} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        optuna_dashboard.run_server(open_storage(url), host=host, port=port)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except OSError as exc:
        raise AutoMLError(f"optuna-dashboard cannot listen on {host}:{port}: {exc.strerror or exc}") from None
