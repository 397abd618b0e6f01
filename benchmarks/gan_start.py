"""Evidence for the gan family's starting configuration: variants of it, trained alone on the 8x8 digits.

Each variant changes a few params of the previous start; validation Frechet distance (what the search optimizes,
lower is better) per epoch, against independent Gaussian pixels with the training split's mean and std.

    python -m benchmarks.gan_start --epochs 40 --seeds 0,1     # -> benchmarks/results/starts/gan.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO
from benchmarks.quality import gaussian_pixels

OUT = REPO / "benchmarks" / "results" / "starts" / "gan.md"
PREVIOUS_START: dict[str, Any] = {
    **{"architecture": "dense", "latent_size": 32, "g_layers": 2, "g_units": 128, "d_layers": 2, "d_units": 128},
    **{"g_learning_rate": 1e-3, "d_learning_rate": 1e-3, "beta1": 0.5, "label_smoothing": 0.1, "d_steps": 1},
    **{"conditional": True, "batch_size": 32},
}
ONE_LAYER = {"g_layers": 1, "d_layers": 1}
VARIANTS: dict[str, dict[str, Any]] = {
    "previous start": {},
    "Adam at 2e-4": {"g_learning_rate": 2e-4, "d_learning_rate": 2e-4},
    "batch 16": {"batch_size": 16},
    "1 layer each": ONE_LAYER,
    "1 layer each, beta_1 0 (the start now)": {**ONE_LAYER, "beta1": 0.0},
    "... and Adam at 5e-4": {**ONE_LAYER, "beta1": 0.0, "g_learning_rate": 5e-4, "d_learning_rate": 5e-4},
    "... and 256 generator units": {**ONE_LAYER, "beta1": 0.0, "g_units": 256},
    "... and no label smoothing": {**ONE_LAYER, "beta1": 0.0, "label_smoothing": 0.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from automl.logs import import_backend_quietly, quiet_libraries

    quiet_libraries()
    import_backend_quietly()
    import keras

    from automl import families
    from automl.data import load_dataset
    from automl.families._quality import feature_space, sample_score
    from automl.training import TrainingData, train

    family = families.get("gan")
    marks = sorted({e for e in (1, 4, 10, 20, args.epochs) if e <= args.epochs})
    lines = [
        "# gan: starting configuration variants",
        "",
        f"`python -m benchmarks.gan_start --epochs {args.epochs} --seeds {args.seeds}` on `demo:digits-images` "
        "(automl's split of each seed). Validation Frechet distance in the family's feature space, lower is better: "
        "the best epoch up to each mark.",
        "",
        "| seed | variant | " + " | ".join(f"best by epoch {m}" for m in marks) + " | fit s |",
        "|---|---|" + "---:|" * (len(marks) + 1),
    ]
    for seed in (int(s) for s in args.seeds.split(",")):
        dataset = load_dataset("demo:digits-images", seed=seed, family="gan")
        data = TrainingData.from_dataset(dataset)
        noise = gaussian_pixels(dataset.x_train, len(dataset.x_val), seed)
        naive = sample_score(feature_space(dataset.x_train, dataset.y_train), noise, dataset.x_val)
        lines.append(
            f"| {seed} | independent Gaussian pixels (naive) | " + " | ".join([f"{naive:.1f}"] * len(marks)) + " | - |"
        )
        for name, change in VARIANTS.items():
            keras.utils.set_random_seed(seed)
            started = time.perf_counter()
            params = {"family": "gan", **PREVIOUS_START, **change}
            _, log = train(family, params, dataset, data, args.epochs, "val_fid", "minimize")
            seconds = time.perf_counter() - started
            values = [h["val_fid"] for h in log.history]
            cells = [f"{min(values[:m]):.1f}" for m in marks]
            lines.append(f"| {seed} | {name} | " + " | ".join(cells) + f" | {seconds:.0f} |")
            print(lines[-1], flush=True)
            keras.utils.clear_session(free_memory=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
