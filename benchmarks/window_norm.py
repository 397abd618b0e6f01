"""Evidence for the rnn's ``window_norm`` on series: the same configurations with and without it.

On ``demo:series-seasonal`` (``--window 48 --horizon 1``), for each seed: the series starting configuration and
``--draws`` random draws from the shipped space, each trained twice for ``--epochs``, once with ``window_norm`` off
and once on (paired: everything else equal). Held-out test RMSE in the series' units (lower is better), next to the
last-value and seasonal-naive forecasts.

    python -m benchmarks.window_norm      # -> benchmarks/results/window_norm/results.{json,md}
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import REPO
from benchmarks.starts import SEASON, draws, fit_one

OUT = REPO / "benchmarks" / "results" / "window_norm"
SOURCE, OPTIONS = "demo:series-seasonal", {"window": 48, "horizon": 1}


def naive_forecasts(dataset: Any) -> dict[str, float]:
    raw, y, index = np.asarray(dataset.raw_test), dataset.y_test[:, 0], dataset.spec.extra["target_index"]
    return {
        "last value": float(np.sqrt(np.mean((raw[:, -1, index] - y) ** 2))),
        f"seasonal naive ({SEASON})": float(np.sqrt(np.mean((raw[:, -SEASON, index] - y) ** 2))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from automl.data import load_dataset
    from automl.logs import import_backend_quietly, quiet_libraries
    from automl.spaces import load_default_space

    quiet_libraries()
    import_backend_quietly()
    space = load_default_space("rnn")
    rows: list[dict[str, Any]] = []
    baselines: dict[str, float] = {}
    for seed in range(args.seeds):
        dataset = load_dataset(SOURCE, seed=seed, family="rnn", **OPTIONS)
        baselines = baselines or naive_forecasts(dataset)
        n_train = len(dataset.y_train)
        start = space.start_points(dataset.task, dataset.spec.kind, n_train=n_train)[0]
        configs = [("start", {**draws(space, dataset, 1, seed)[0], **start})]
        configs += [(f"draw {i}", params) for i, params in enumerate(draws(space, dataset, args.draws, seed))]
        for label, params in configs:
            pair = {}
            for norm in (False, True):
                value, seconds = fit_one("rnn", {**params, "window_norm": norm}, dataset, args.epochs, seed)
                pair[norm] = value
                print(f"seed {seed} {label} window_norm={norm}: rmse {value:.4f} ({seconds:.1f} s)", flush=True)
            rows.append({"seed": seed, "config": label, "off": pair[False], "on": pair[True]})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1, default=str))
    starts = [r for r in rows if r["config"] == "start"]
    drawn = [r for r in rows if r["config"] != "start"]

    def median(values: list[float]) -> str:
        return f"{statistics.median(values):.3f}"

    lines = [
        "# window_norm on series: paired fits",
        "",
        f"`python -m benchmarks.window_norm --epochs {args.epochs} --draws {args.draws} --seeds {args.seeds}`; "
        f"{SOURCE} (window 48, horizon 1); held-out test RMSE (lower is better), median over fits.",
        "",
        "| configurations | fits | window_norm off | window_norm on | on better in |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, group in (("starting configuration", starts), ("random draws from the space", drawn)):
        wins = sum(r["on"] < r["off"] for r in group)
        lines.append(
            f"| {name} | {len(group)} | {median([r['off'] for r in group])} | {median([r['on'] for r in group])} "
            f"| {wins} of {len(group)} |"
        )
    lines += ["", "Naive forecasts: " + ", ".join(f"{k} {v:.3f}" for k, v in baselines.items()) + "."]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
