"""Evidence for the generative families' starting configurations: variants of a reference, each trained alone.

Each variant changes a few params of the family's reference (its previous start). Per seed, on automl's split of the
data set, the value the search optimizes on the validation split: the best epoch up to each mark, next to the
family's naive baseline on the same split (``quality.MEAN_BASELINES``).

    python -m benchmarks.start_variants --family gan --epochs 40 --seeds 0,1          # -> results/starts/gan.md
    python -m benchmarks.start_variants --family gan --steps 34,100,200,400 --epochs 4 --seeds 0,1,2   # gan-steps.md
    python -m benchmarks.start_variants --family vae --epochs 12 --seeds 0,1,2        # -> results/starts/vae.md
    python -m benchmarks.start_variants --family autorec --epochs 12 --seeds 0,1,2    # -> results/starts/autorec.md

The gan variants were measured with one pass over the training rows per epoch (``gan.MIN_STEPS`` 0); ``--steps``
trains the gan start as it is in ``search_spaces/gan.yaml`` with each least number of generator steps per epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO
from benchmarks.quality import MEAN_BASELINES, naive_score

OUT = REPO / "benchmarks" / "results" / "starts"


@dataclasses.dataclass(frozen=True)
class Case:
    """A family's data set, what its search optimizes, its reference configuration and the variants of it."""

    data: str
    monitor: str  # the validation value the search optimizes (lower is better for every case here)
    metric: str  # the same value's name in ``quality.MEAN_BASELINES``
    reference: dict[str, Any]
    variants: dict[str, dict[str, Any]]


GAN_ONE_LAYER = {"g_layers": 1, "d_layers": 1}
VAE_WIDE = {"beta": 1.0, "n_layers": 1, "units": 256}
CASES: dict[str, Case] = {
    "gan": Case(
        "demo:digits-images",
        "val_fid",
        "test_fid",
        {
            **{"architecture": "dense", "latent_size": 32, "g_layers": 2, "g_units": 128, "d_layers": 2},
            **{"d_units": 128, "g_learning_rate": 1e-3, "d_learning_rate": 1e-3, "beta1": 0.5},
            **{"label_smoothing": 0.1, "d_steps": 1, "conditional": True, "batch_size": 32},
        },
        {
            "previous start": {},
            "Adam at 2e-4": {"g_learning_rate": 2e-4, "d_learning_rate": 2e-4},
            "batch 16": {"batch_size": 16},
            "1 layer each": GAN_ONE_LAYER,
            "1 layer each, beta_1 0 (the start now)": {**GAN_ONE_LAYER, "beta1": 0.0},
            "... and Adam at 5e-4": {**GAN_ONE_LAYER, "beta1": 0.0, "g_learning_rate": 5e-4, "d_learning_rate": 5e-4},
            "... and 256 generator units": {**GAN_ONE_LAYER, "beta1": 0.0, "g_units": 256},
            "... and no label smoothing": {**GAN_ONE_LAYER, "beta1": 0.0, "label_smoothing": 0.0},
        },
    ),
    "vae": Case(
        "demo:digits-images",
        "val_neg_elbo",
        "test_neg_elbo",
        {
            **{"architecture": "dense", "n_layers": 2, "units": 128, "latent_size": 8, "beta": 0.3},
            **{"activation": "relu", "batch_size": 16, "optimizer": "adam", "learning_rate": 3e-3},
        },
        {
            "previous start": {},
            "beta 1": {"beta": 1.0},
            "beta 1, 256 units": {"beta": 1.0, "units": 256},
            "beta 1, latent 16": {"beta": 1.0, "latent_size": 16},
            "beta 1, conv (32 filters)": {"beta": 1.0, "architecture": "conv", "filters": 32},
            "beta 1, 1 layer of 256": VAE_WIDE,
            "... and latent 4 (the start now)": {**VAE_WIDE, "latent_size": 4},
            "... and Adam at 1e-3": {**VAE_WIDE, "learning_rate": 1e-3},
            "... and elu": {**VAE_WIDE, "activation": "elu"},
        },
    ),
    "autorec": Case(
        "demo:ratings",
        "val_rmse",
        "test_rmse",
        {
            **{"hidden": 128, "activation": "sigmoid", "l2": 1e-3, "dropout": 0.0, "batch_size": 16},
            **{"optimizer": "adam", "learning_rate": 3e-3},
        },
        {
            "previous start": {},
            "500 hidden": {"hidden": 500},
            "l2 1e-2": {"l2": 1e-2},
            "dropout 0.2": {"dropout": 0.2},
            "batch 8": {"batch_size": 8},
            "Adam at 1e-3": {"learning_rate": 1e-3},
            "Adam at 1e-2": {"learning_rate": 1e-2},
            "Adam at 1e-2, batch 8 (the start now)": {"learning_rate": 1e-2, "batch_size": 8},
            "Adam at 1e-2, 500 hidden": {"learning_rate": 1e-2, "hidden": 500},
            "Adam at 1e-2, l2 1e-2": {"learning_rate": 1e-2, "l2": 1e-2},
        },
    ),
}


def validation_as_test(dataset: Any) -> Any:
    """``dataset`` with its validation split as the test split, in the test split's units."""
    y_val = dataset.y_val
    if dataset.spec.kind == "ratings":  # validation ratings are centered like the matrix; test ratings are not
        y_val = y_val + float(dataset.metadata["mean"])
    return dataclasses.replace(dataset, x_test=dataset.x_val, y_test=y_val)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(CASES), default="gan")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--steps", default="", help="gan: comma list of MIN_STEPS values to train its start with")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from automl.logs import import_backend_quietly, quiet_libraries

    quiet_libraries()
    import_backend_quietly()
    import keras

    import automl.families.gan as gan
    from automl import families
    from automl.data import load_dataset
    from automl.spaces import load_default_space
    from automl.training import TrainingData, train

    case, family = CASES[args.family], families.get(args.family)
    runs: list[tuple[str, dict[str, Any], int | None]]  # name, params, gan.MIN_STEPS (None: not a gan)
    if args.steps:
        if args.family != "gan":
            parser.error("--steps applies to --family gan")
        start = dict(load_default_space("gan").starts[0].params)
        runs = [(f"the start, {n} steps per epoch at least", start, int(n)) for n in args.steps.split(",")]
        what, out = "the start at several least numbers of generator steps per epoch", OUT / "gan-steps.md"
    else:
        min_steps = 0 if args.family == "gan" else None  # gan variants: one pass over the rows per epoch
        runs = [(name, {**case.reference, **change}, min_steps) for name, change in case.variants.items()]
        what, out = "starting configuration variants", OUT / f"{args.family}.md"
    out = args.out or out
    marks = sorted({e for e in (1, 4, 10, 20, args.epochs) if e <= args.epochs})
    options = f"--family {args.family} --epochs {args.epochs} --seeds {args.seeds}"
    lines = [
        f"# {args.family}: {what}",
        "",
        f"`python -m benchmarks.start_variants {options}{f' --steps {args.steps}' if args.steps else ''}` on "
        f"`{case.data}` (automl's split of each seed). `{case.monitor}` (lower is better), what the search "
        "optimizes: the best epoch up to each mark. Naive: "
        f"{MEAN_BASELINES[case.metric]}, on the validation split.",
        "",
        "| seed | variant | " + " | ".join(f"best by epoch {m}" for m in marks) + " | fit s |",
        "|---|---|" + "---:|" * (len(marks) + 1),
    ]
    for seed in (int(s) for s in args.seeds.split(",")):
        dataset = load_dataset(case.data, seed=seed, family=args.family)
        data = TrainingData.from_dataset(dataset)
        naive = naive_score(validation_as_test(dataset), case.metric, seed)
        lines.append(f"| {seed} | naive | " + " | ".join([f"{naive:.3f}"] * len(marks)) + " | - |")
        for name, params, steps in runs:
            if steps is not None:
                gan.MIN_STEPS = steps
            keras.utils.set_random_seed(seed)
            started = time.perf_counter()
            params = {"family": args.family, **params}
            _, log = train(family, params, dataset, data, args.epochs, case.monitor, "minimize")
            seconds = time.perf_counter() - started
            values = [h[case.monitor] for h in log.history]
            cells = [f"{min(values[:m]):.3f}" for m in marks]
            lines.append(f"| {seed} | {name} | " + " | ".join(cells) + f" | {seconds:.0f} |")
            print(lines[-1], flush=True)
            keras.utils.clear_session(free_memory=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
