"""``automl predict`` and ``automl ui``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.errors import handle_errors
from cli.options import Home, TrackingUri


@handle_errors
def predict(
    model: Annotated[str, typer.Option("--model", help="Model URI: models:/NAME@champion, models:/NAME/1, runs:/...")],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="Raw inputs: a CSV/Parquet file (tables, text rows, series), a folder of images, or an .npz with x.",
        ),
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="Where to write the rows plus a prediction column (.csv or .parquet); "
            "for a folder of images, one row per file: path, prediction.",
        ),
    ],
    column: Annotated[str, typer.Option("--column", help="Name of the prediction column.")] = "prediction",
    home: Home = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Predict with a registered model on raw inputs; writes them back with a prediction column."""
    from automl.config import resolve_store
    from automl.data.prediction import prediction_frame, read_prediction_input
    from automl.errors import DataError
    from automl.export import predict_raw
    from automl.logs import import_backend_quietly
    from automl.tracking import load_pyfunc

    if not Path(data).exists():
        raise DataError(f"{data}: data file not found")
    import_backend_quietly()
    store = resolve_store(home, tracking_uri)
    wrapper = load_pyfunc(model, store.tracking_uri).unwrap_python_model()
    raw, rows = read_prediction_input(data, wrapper.metadata)
    try:
        predictions = predict_raw(wrapper.keras_model, wrapper.metadata, raw)
    except DataError as exc:
        raise DataError(f"{data}: {exc}") from None
    out = prediction_frame(rows, predictions, wrapper.metadata, column)
    destination = Path(output)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.suffix.lower() in (".parquet", ".pq"):
        out.to_parquet(destination, index=False)
    else:
        out.to_csv(destination, index=False)
    print(f"wrote {len(out)} predictions to {destination}", file=sys.stderr)


@handle_errors
def ui(
    port: Annotated[int, typer.Option("--port", help="Port of the MLflow UI.")] = 5000,
    host: Annotated[
        str, typer.Option("--host", help="Interface to bind; anything but loopback exposes your runs to the network.")
    ] = "127.0.0.1",
    home: Home = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Open the MLflow UI over the store (bound to 127.0.0.1 unless --host says otherwise)."""
    from automl.config import resolve_store
    from automl.errors import StoreError

    store = resolve_store(home, tracking_uri)
    if store.tracking_uri.startswith(("http://", "https://")):
        print(f"the tracking URI is already a server: open {store.tracking_uri}")
        return
    if store.tracking_uri.startswith("sqlite:///") and not Path(store.tracking_uri[10:]).is_file():
        raise StoreError(f"no MLflow store at {store.tracking_uri} (run a search first, or pass --home)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"automl: warning: the UI on {host} exposes every run and model to the network", file=sys.stderr)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        store.tracking_uri,
        "--default-artifact-root",
        store.artifacts_dir.as_uri(),
        "--host",
        host,
        "--port",
        str(port),
    ]
    command += ["--workers", "1"]
    # one worker and no background job runners: a local UI needs neither, and they outlive a plain kill
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    print(f"MLflow UI on http://{host}:{port} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    process = subprocess.Popen(command, env=env, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop_group(process)
    raise typer.Exit(code)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the UI server and every process it started (uvicorn workers, job runners)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
