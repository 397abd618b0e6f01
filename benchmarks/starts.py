"""Evidence for the search spaces' defaults: each family's starting configuration against random draws.

For each family and data set, on automl's own split, trains for ``--epochs``:
- the space's first starting configuration (what a new study tries first);
- ``--draws`` random draws from the shipped space (what the sampler explores next);
- ``--draws`` random draws from the space this project shipped before the small-budget changes
  (``benchmarks/results/starts/previous_spaces``: flips searched, one learning-rate range for every optimizer,
  batch sizes up to 256, no linear skip for series);
and a naive baseline (the majority class, or the better of the last-value and seasonal-naive forecasts).
Held-out test accuracy (higher is better) or RMSE (lower is better).

    python -m benchmarks.starts                 # -> benchmarks/results/starts/results.{json,md}
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import REPO

OUT = REPO / "benchmarks" / "results" / "starts"
PREVIOUS = OUT / "previous_spaces"
SEASON = 24
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("mlp", "demo:wine", {}),
    ("mlp", "demo:digits", {}),
    ("cnn", "demo:digits-images", {}),
    ("resnet", "demo:digits-images", {}),
    ("rnn", "demo:series-seasonal", {"window": 48, "horizon": 1}),
    ("rnn", "demo:text-sentiment", {}),
]


def held_out(model: Any, dataset: Any) -> float:
    """Test accuracy (classification) or test RMSE in target units (regression)."""
    predicted = np.asarray(model.predict(dataset.x_test, verbose=0))
    if dataset.task == "classification":
        return float((predicted.argmax(-1) == dataset.y_test).mean())
    mean, std = dataset.y_scale
    return float(np.sqrt(np.mean((predicted * std + mean - dataset.y_test) ** 2)))


def naive(dataset: Any) -> tuple[str, float]:
    if dataset.task == "classification":
        majority = np.bincount(dataset.y_train).argmax()
        return "majority class", float(np.mean(dataset.y_test == majority))
    raw, y, index = np.asarray(dataset.raw_test), dataset.y_test[:, 0], dataset.spec.extra["target_index"]
    last = float(np.sqrt(np.mean((raw[:, -1, index] - y) ** 2)))
    seasonal = float(np.sqrt(np.mean((raw[:, -SEASON, index] - y) ** 2)))
    return ("last value", last) if last <= seasonal else (f"seasonal naive ({SEASON})", seasonal)


def fit_one(family_name: str, params: dict[str, Any], dataset: Any, epochs: int, seed: int) -> tuple[float, float]:
    import keras

    from automl import families
    from automl.training import TrainingData, resolve_metric, train

    family = families.get(family_name)
    metric, direction = resolve_metric(dataset.task, None, family)
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    model, _ = train(
        family,
        {"family": family_name, **params},
        dataset,
        TrainingData.from_dataset(dataset),
        epochs,
        f"val_{metric}",
        direction,
    )
    seconds = time.perf_counter() - start
    value = held_out(model, dataset)
    keras.utils.clear_session(free_memory=False)
    return value, seconds


def draws(space: Any, dataset: Any, n: int, seed: int) -> list[dict[str, Any]]:
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    n_train = len(dataset.y_train)
    return [space.suggest(study.ask(), dataset.task, kind=dataset.spec.kind, n_train=n_train) for _ in range(n)]


def run_case(family_name: str, source: str, options: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from automl.data import load_dataset
    from automl.spaces import load_default_space, load_space

    shipped = load_default_space(family_name)
    previous = load_space(PREVIOUS / f"{family_name}.yaml")
    rows: dict[str, list[dict[str, float]]] = {"start": [], "shipped space": [], "previous space": []}
    baseline = None
    for seed in range(args.seeds):
        dataset = load_dataset(source, seed=seed, family=family_name, **options)
        baseline = baseline or naive(dataset)
        n_train = len(dataset.y_train)
        start = shipped.start_points(dataset.task, dataset.spec.kind, n_train=n_train)[0]
        filled = {**draws(shipped, dataset, 1, seed)[0], **start}  # a param the start leaves out: the sampler's
        configs = {"start": [filled], "shipped space": draws(shipped, dataset, args.draws, seed)}
        configs["previous space"] = draws(previous, dataset, args.draws, seed)
        for arm, params_list in configs.items():
            for params in params_list:
                value, seconds = fit_one(family_name, params, dataset, args.epochs, seed)
                rows[arm].append({"seed": seed, "value": value, "fit_s": seconds})
                print(f"{family_name} {source} seed {seed} {arm}: {value:.4f} ({seconds:.1f} s)", flush=True)
    return {"family": family_name, "data": source, "options": options, "naive": baseline, "arms": rows}


def summarize(case: dict[str, Any]) -> dict[str, str]:
    lower = case["data"] == "demo:series-seasonal"
    cells = {}
    for arm, rows in case["arms"].items():
        values = [r["value"] for r in rows]
        best_per_seed = [
            (min if lower else max)(r["value"] for r in rows if r["seed"] == s) for s in {r["seed"] for r in rows}
        ]
        fit = statistics.median(r["fit_s"] for r in rows)
        cells[arm] = (
            f"{statistics.median(values):.3f} (best of seed {statistics.median(best_per_seed):.3f}; fit {fit:.1f} s)"
        )
    return cells


def write_report(cases: list[dict[str, Any]], args: argparse.Namespace, out: Path) -> None:
    lines = [
        "# Starting configurations against random draws",
        "",
        f"`python -m benchmarks.starts --epochs {args.epochs} --draws {args.draws} --seeds {args.seeds}`; "
        "held-out test accuracy (higher is better) or RMSE (series, lower is better), on automl's split of each "
        "seed. Cells: median over every fit (best per seed, median over seeds; median fit seconds). "
        "`previous space`: the spaces shipped before the small-budget changes (`previous_spaces/`).",
        "",
        "| family | data | metric | start | shipped space (random) | previous space (random) | naive |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        cells = summarize(case)
        metric = "rmse" if case["data"] == "demo:series-seasonal" else "accuracy"
        name, value = case["naive"]
        lines.append(
            f"| {case['family']} | {case['data']} | {metric} | {cells['start']} | {cells['shipped space']} | "
            f"{cells['previous space']} | {name} {value:.3f} |"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"args": vars(args), "cases": cases}, indent=1, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--draws", type=int, default=3, help="random draws per space and seed")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--families", default="", help="comma-separated subset (default: all cases)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from automl.logs import import_backend_quietly, quiet_libraries

    quiet_libraries()
    import_backend_quietly()
    wanted = set(filter(None, args.families.split(",")))
    cases = [run_case(f, d, o, args) for f, d, o in CASES if not wanted or f in wanted]
    write_report(cases, args, args.out)


if __name__ == "__main__":
    main()
