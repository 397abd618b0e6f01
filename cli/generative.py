"""``automl sample`` (draw from a registered generator), ``automl encode`` (latent codes of raw rows) and
``automl translate`` (images into another domain with a registered translator)."""

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

    from automl.data.generative import draw_latent, save_samples

    wrapper = _load(model, home, tracking_uri)
    z = draw_latent(wrapper.metadata, n, label, seed)
    samples = np.asarray(wrapper.keras_model.predict(z, verbose=0))
    destination = Path(output)
    save_samples(samples, destination)
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


@handle_errors
def translate(
    model: Model,
    data: Annotated[str, typer.Option("--data", help="Images to translate: a folder, one image file, or an .npz (x).")],
    to: Annotated[str, typer.Option("--to", help="The target domain (its folder name; see the model's labels).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Folder for the translations.")],
    home: Home = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Translate images into another domain with a registered CycleGAN or StarGAN model."""
    import numpy as np

    from automl.data.domains import domain_indices, read_translation_input, write_translations
    from automl.errors import AutoMLError, DataError
    from automl.export import predict_raw

    if not Path(data).exists():
        raise DataError(f"{data}: data file not found")
    wrapper = _load(model, home, tracking_uri)
    metadata = wrapper.metadata
    if metadata.get("kind") != "translation":
        raise AutoMLError(f"model '{model}' is not a translator (search the cyclegan or stargan family)")
    domain_indices(metadata, to, 1)  # an unknown --to: one line that lists the domains
    images, names = read_translation_input(data, metadata)
    translated = predict_raw(wrapper.keras_model, metadata, {"image": images, "domain": np.full(len(images), to)})
    count = write_translations(translated, names, data, Path(output), float(metadata["pixel_scale"]))
    print(f"wrote {count} translated image(s) to {output}", file=sys.stderr)
