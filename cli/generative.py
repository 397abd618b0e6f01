"""``automl sample`` (draw from a registered generator) and ``automl encode`` (latent codes of raw rows)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.errors import handle_errors
from cli.options import Home, TrackingUri

if TYPE_CHECKING:
    from automl.tracking import RawInputModel

Model = Annotated[str, typer.Option("--model", help="Model URI: models:/NAME@champion, models:/NAME/1, runs:/...")]


def _load(model: str, home: str | None, tracking_uri: str | None) -> RawInputModel:
    from automl.config import resolve_store
    from automl.logs import import_backend_quietly
    from automl.tracking import load_pyfunc

    import_backend_quietly()
    store = resolve_store(home, tracking_uri)
    return load_pyfunc(model, store.tracking_uri).unwrap_python_model()


@handle_errors
def sample(
    model: Model,
    output: Annotated[str, typer.Option("--output", "-o", help="grid.png (images), .npz (arrays) or .csv (rows).")],
    n: Annotated[int, typer.Option("-n", "--n", help="How many samples.")] = 64,
    label: Annotated[
        int | None, typer.Option("--label", help="Class index for a conditional generator (default: cycle).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the latent draws.")] = 0,
    home: Home = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Draw samples from a registered generator and write them as an image grid, arrays or rows."""
    import numpy as np

    from automl.errors import AutoMLError

    if n < 1:
        raise AutoMLError(f"-n must be at least 1 (got {n})")
    wrapper = _load(model, home, tracking_uri)
    meta = wrapper.metadata
    if meta.get("kind") != "latent":
        raise AutoMLError(f"model '{model}' is not a generator (it takes {meta.get('kind')} data)")
    latent, domains = int(meta["latent_size"]), int(meta.get("n_labels", 0))
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, latent)).astype("float32")
    if domains:
        if label is not None and not 0 <= label < domains:
            raise AutoMLError(f"--label {label}: this generator has labels 0..{domains - 1}")
        labels = np.full(n, label) if label is not None else np.arange(n) % domains
        z = np.concatenate([z, np.eye(domains, dtype="float32")[labels]], axis=1)
    samples = np.asarray(wrapper.keras_model.predict(z, verbose=0))
    destination = Path(output)
    destination.parent.mkdir(parents=True, exist_ok=True)
    suffix = destination.suffix.lower()
    if suffix == ".png":
        if samples.ndim != 4:
            raise AutoMLError(f"--output {output}: this generator makes table rows; write them to a .csv or .npz")
        from PIL import Image

        from automl.families._quality import image_grid

        grid = (image_grid(samples) * 255).round().astype("uint8")
        Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(destination)
    elif suffix == ".npz":
        np.savez_compressed(destination, x=samples)
    elif suffix == ".csv":
        import pandas as pd

        pd.DataFrame(samples.reshape(n, -1)).add_prefix("x_").to_csv(destination, index=False)
    else:
        raise AutoMLError(f"--output {output}: expected a .png, .npz or .csv file")
    print(f"wrote {n} samples to {destination}", file=sys.stderr)


@handle_errors
def encode(
    model: Model,
    data: Annotated[str, typer.Option("--data", help="Raw rows: a CSV/Parquet file, a folder of images, an .npz.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Where to write the codes (.csv or .parquet).")],
    home: Home = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Latent codes of raw rows from a registered encoder (an autoencoder's or a VAE's)."""
    import pandas as pd

    from automl.data.prediction import read_prediction_input
    from automl.errors import AutoMLError, DataError
    from automl.export import predict_raw

    if not Path(data).exists():
        raise DataError(f"{data}: data file not found")
    wrapper = _load(model, home, tracking_uri)
    if not wrapper.metadata.get("output_prefix") or wrapper.metadata.get("kind") == "latent":
        raise AutoMLError(f"model '{model}' is not an encoder (search an autoencoder or vae without --target)")
    raw, _rows = read_prediction_input(data, wrapper.metadata)
    try:
        codes = predict_raw(wrapper.keras_model, wrapper.metadata, raw)
    except DataError as exc:
        raise DataError(f"{data}: {exc}") from None
    destination = Path(output)
    destination.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(codes)
    if destination.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(destination, index=False)
    else:
        frame.to_csv(destination, index=False)
    print(f"wrote {len(frame)} codes to {destination}", file=sys.stderr)
