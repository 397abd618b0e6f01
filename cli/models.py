"""``automl predict`` and ``automl ui``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.errors import handle_errors
from cli.options import Home, TrackingUri


def read_table(path: str) -> object:
    import pandas as pd

    from automl.errors import DataError

    file = Path(path)
    if not file.is_file():
        raise DataError(f"{path}: data file not found")
    try:
        return pd.read_parquet(file) if file.suffix.lower() in (".parquet", ".pq") else pd.read_csv(file)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise DataError(f"{path}: cannot read as a table: {str(exc).splitlines()[0]}") from None


@handle_errors
def predict(
    model: Annotated[str, typer.Option("--model", help="Model URI: models:/NAME@champion, models:/NAME/1, runs:/...")],
    data: Annotated[str, typer.Option("--data", help="CSV or Parquet file of raw feature columns.")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="Where to write the rows plus a prediction column (.csv or .parquet).")
    ],
    column: Annotated[str, typer.Option("--column", help="Name of the prediction column.")] = "prediction",
    home: Home = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Predict with a registered model on raw rows; writes them back with a prediction column."""
    from automl.config import resolve_store
    from automl.errors import DataError
    from automl.export import predict_raw
    from automl.logs import import_backend_quietly
    from automl.tracking import load_pyfunc

    frame = read_table(data)
    import_backend_quietly()
    store = resolve_store(home, tracking_uri)
    wrapper = load_pyfunc(model, store.tracking_uri).unwrap_python_model()
    try:
        predictions = predict_raw(wrapper.keras_model, wrapper.metadata, frame)
    except DataError as exc:
        raise DataError(f"{data}: {exc}") from None
    out = frame.copy()  # type: ignore[attr-defined]
    out[column] = list(predictions)
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
    print(f"MLflow UI on http://{host}:{port} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        raise typer.Exit(subprocess.call(command))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
