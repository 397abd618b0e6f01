"""``automl search``, ``automl resume`` and ``automl worker``: run trials of a study and register its best model."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from cli.errors import handle_errors
from cli.options import Home, Json, Storage, TrackingUri
from cli.progress import PlainProgress, RichProgress

if TYPE_CHECKING:
    from automl.runner import SearchResult

Trials = Annotated[int | None, typer.Option("--trials", help="Trials to run (finished COMPLETE or PRUNED).")]
Timeout = Annotated[float | None, typer.Option("--timeout", help="Stop starting trials after this many seconds.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Plain log lines instead of a progress bar.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="With --quiet: a line per epoch, not only per trial.")]


def _progress(quiet: bool, verbose: bool = False) -> RichProgress | PlainProgress:
    return PlainProgress(verbose) if quiet else RichProgress()


def _print_result(result: SearchResult, as_json: bool) -> None:
    from dataclasses import asdict

    data = asdict(result)
    if as_json:
        print(json.dumps(data, default=str, indent=2))
        return
    console = Console()
    if data["best_trial"] is None:
        console.print(f"[red]no trial completed[/red] ({data['stopped_reason']})")
        return
    console.print(f"[bold]best trial[/bold] #{data['best_trial']}: val_{data['metric']} = {data['best_value']:.6g}")
    for key, value in data["test_metrics"].items():
        console.print(f"  {key} = {value:.6g}")
    console.print(f"  model: {data['model_uri']}  (alias: {data['champion_uri']})")
    fit, wall = data["fit_seconds"], data["wall_seconds"]
    console.print(
        f"  trials: {', '.join(f'{k}={v}' for k, v in data['states'].items() if v)}; "
        f"wall {wall:.1f}s, in fit {fit:.1f}s"
    )
    if data["stopped_reason"]:
        console.print(f"[yellow]{data['stopped_reason']}[/yellow]")


def parse_image_size(text: str | None) -> tuple[int, int] | None:
    from automl.errors import AutoMLError

    if text is None:
        return None
    height, sep, width = text.lower().partition("x")
    try:
        size = (int(height), int(width or height))
    except ValueError:
        raise AutoMLError(f"--image-size '{text}': expected HxW, e.g. 64x64") from None
    if min(size) < 1 or not (sep or not width):
        raise AutoMLError(f"--image-size '{text}': expected HxW, e.g. 64x64")
    return size


def _exit_code(result: object) -> None:
    if getattr(result, "best_trial", None) is None or getattr(result, "stopped_reason", None):
        raise typer.Exit(1)


@handle_errors
def search(
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="CSV/Parquet file, a folder of class sub-folders of images, an .npz (x, y), or demo:NAME "
            "(digits, wine, breast_cancer, diabetes, iris, digits-images, text-sentiment, series-seasonal, "
            "sequence-waves).",
        ),
    ],
    family: Annotated[str, typer.Option("--family", "-f", help="Architecture family (see `automl families`).")] = "mlp",
    target: Annotated[str | None, typer.Option("--target", help="Target column of a table.")] = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help="classification or regression (default: detected); reconstruction, anomaly, density, generation, "
            "rating or translation for the generative families (any task a registered family declares).",
        ),
    ] = None,
    normal_label: Annotated[
        str | None,
        typer.Option("--normal-label", help="--task anomaly: the --target label of normal rows (default: majority)."),
    ] = None,
    study: Annotated[str | None, typer.Option("--study", help="Study name; an existing study is continued.")] = None,
    trials: Trials = 20,
    timeout: Timeout = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs per trial (the pruners' max resource).")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the splits, the sampler and every trial.")] = 0,
    sampler: Annotated[str, typer.Option("--sampler", help="tpe, random, cmaes, gp or qmc.")] = "tpe",
    pruner: Annotated[str, typer.Option("--pruner", help="median, asha, hyperband or none.")] = "median",
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="Objective on the validation split: accuracy, loss (classification); rmse, mae, loss (regression).",
        ),
    ] = None,
    space: Annotated[str | None, typer.Option("--space", help="YAML file replacing the family's space.")] = None,
    set_values: Annotated[list[str] | None, typer.Option("--set", help="Pin a param: name=value (repeatable).")] = None,
    register_name: Annotated[
        str | None, typer.Option("--register-name", help="Registered model name (default: the study name).")
    ] = None,
    max_failures: Annotated[
        int, typer.Option("--max-failures", help="Stop after K consecutive failed trials (0: never).")
    ] = 5,
    image_size: Annotated[
        str | None, typer.Option("--image-size", help="HxW images are resized to (image folders), e.g. 64x64.")
    ] = None,
    text_column: Annotated[
        str | None, typer.Option("--text-column", help="Text column of a CSV (text classification).")
    ] = None,
    window: Annotated[
        int | None, typer.Option("--window", help="Time steps per input window (time-series forecasting).")
    ] = None,
    horizon: Annotated[int, typer.Option("--horizon", help="Steps ahead to forecast.")] = 1,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Local worker processes on the study (default: "
            "one per GPU, else 1); GPUs round-robin, else CPU threads split.",
        ),
    ] = None,
    trials_per_gpu: Annotated[
        int, typer.Option("--trials-per-gpu", help="Pack K small trials onto each GPU (K workers share it).")
    ] = 1,
    mixed_precision: Annotated[
        bool, typer.Option("--mixed-precision", help="Train in mixed_float16 (outputs stay float32).")
    ] = False,
    isolation: Annotated[
        str | None,
        typer.Option(
            "--isolation",
            help="process: trials train in a long-lived trial process, replaced now and then so memory goes "
            "back; none: trials share this process. Default: $AUTOML_ISOLATION, else process.",
        ),
    ] = None,
    worker_max_trials: Annotated[
        int | None,
        typer.Option(
            "--worker-max-trials",
            help="With --isolation process: replace the trial process after this many trials (0: never). Default: 20.",
        ),
    ] = None,
    worker_max_rss_growth_mb: Annotated[
        float | None,
        typer.Option(
            "--worker-max-rss-growth",
            help="With --isolation process: replace the trial process once its memory (RSS) grew by this many MB "
            "since its first trial (0: never). Default: 200.",
        ),
    ] = None,
    oom_retry: Annotated[
        bool,
        typer.Option(
            "--oom-retry",
            help="With --isolation process: run a trial killed for memory once more at half the batch size.",
        ),
    ] = False,
    hypermodel: Annotated[
        str | None,
        typer.Option(
            "--hypermodel",
            help="Search an unmodified KerasTuner "
            "build(hp) function or HyperModel: MODULE:NAME or file.py:NAME "
            "(replaces --family).",
        ),
    ] = None,
    lint: Annotated[
        bool,
        typer.Option(
            "--lint/--no-lint", help="Build every branch of the space on a tiny input before the first trial."
        ),
    ] = True,
    trust_model_code: Annotated[
        bool,
        typer.Option(
            "--trust-model-code",
            help="Allow models that Keras safe_mode refuses (Lambda layers): the registered model is then loaded "
            "with safe_mode off, which runs the code saved in it. Only for models whose code you trust.",
        ),
    ] = False,
    max_params: Annotated[
        int | None,
        typer.Option(
            "--max-params",
            help="The lint refuses a branch with more parameters (counted without building it). "
            "Default: half the machine's memory at 16 bytes a parameter.",
        ),
    ] = None,
    start: Annotated[
        bool,
        typer.Option(
            "--start/--no-start",
            help="A new study first tries the space's known-good starting configurations (tagged origin=start).",
        ),
    ] = True,
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="Log the study's plots to the parent run at the end.")
    ] = True,
    tracking: Annotated[
        bool,
        typer.Option(
            "--tracking/--no-tracking",
            help="Record runs in MLflow and register the best model; --no-tracking keeps only the Optuna study "
            "and saves the best model to HOME/models/.",
        ),
    ] = True,
    deterministic: Annotated[
        bool,
        typer.Option(
            "--deterministic", help="Deterministic TensorFlow ops, so `automl reproduce` matches to the last bit."
        ),
    ] = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    as_json: Json = False,
    home: Home = None,
    tracking_uri: TrackingUri = None,
    storage: Storage = None,
) -> None:
    """Search a family's space on a data set; every trial goes to MLflow, the best model to the registry."""
    from automl.config import SearchConfig
    from automl.logs import import_backend_quietly
    from automl.runner import check_stores
    from automl.runner import search as run_search

    options = {**locals(), "image_size": parse_image_size(image_size)}  # every option, by its field's name
    config = SearchConfig.from_options(options)
    check_stores(config)  # a store or server that cannot be used fails before Keras is imported
    import_backend_quietly()
    result = run_search(config, _progress(quiet, verbose))
    _print_result(result, as_json)
    _exit_code(result)


@handle_errors
def resume(
    study: Annotated[str, typer.Option("--study", help="The study to continue.")],
    trials: Annotated[
        int | None, typer.Option("--trials", help="Run N more trials instead of finishing the recorded budget.")
    ] = None,
    timeout: Timeout = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    as_json: Json = False,
    home: Home = None,
    tracking_uri: TrackingUri = None,
    storage: Storage = None,
) -> None:
    """Continue a study with its recorded settings, up to the budget its last search asked for."""
    from automl.logs import import_backend_quietly
    from automl.runner import resume as run_resume

    import_backend_quietly()

    result = run_resume(
        study,
        home=home,
        tracking_uri=tracking_uri,
        storage=storage,
        progress=_progress(quiet, verbose),
        trials=trials,
        timeout=timeout,
    )
    _print_result(result, as_json)
    _exit_code(result)


@handle_errors
def worker(
    study: Annotated[str, typer.Option("--study", help="The study to join.")],
    trials: Annotated[
        int | None,
        typer.Option("--trials", help="Trials this worker runs (default: until the study's budget is reached)."),
    ] = None,
    register: Annotated[bool, typer.Option("--register", help="Register the study's best model when done.")] = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    as_json: Json = False,
    home: Home = None,
    tracking_uri: TrackingUri = None,
    storage: Storage = None,
) -> None:
    """Join an existing study as one more worker (Optuna's distributed mode: same --storage, same --tracking-uri)."""
    from automl.logs import import_backend_quietly
    from automl.runner import worker as run_worker

    import_backend_quietly()
    result = run_worker(
        study,
        home=home,
        tracking_uri=tracking_uri,
        storage=storage,
        trials=trials,
        register=register,
        progress=_progress(quiet, verbose),
    )
    if as_json:
        _print_result(result, as_json)
    if result.stopped_reason:
        print(f"automl: {result.stopped_reason}", file=sys.stderr)
        raise typer.Exit(1)
