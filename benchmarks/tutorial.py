"""KerasTuner's getting-started flow, once with ``keras_tuner.RandomSearch`` and once with ``automl.Tuner``.

The same script for both; only the tuner's constructor differs (the one-line change the README shows). The
model follows the tutorial's: Flatten, 1-3 Dense layers of 32-512 units (relu or tanh), optional dropout, a
softmax head, Adam at a log-uniform rate, categorical cross-entropy on one-hot labels; ``max_trials=3``,
``executions_per_trial=2``, 2 epochs. Data: scikit-learn's shipped 8x8 digits instead of MNIST (nothing is
downloaded here), split 1,000 train / 300 validation / 497 test. Each tool and seed runs in its own process.
Reported: the best trial's validation score, the held-out test accuracy of ``get_best_models(1)[0]``, and the
wall-clock seconds of ``search``.

    python -m benchmarks.tutorial --seeds 5      # -> benchmarks/results/tutorial/results.{json,md}
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.common import REPO

OUT = REPO / "benchmarks" / "results" / "tutorial"
TOOLS = ("keras_tuner.RandomSearch", "automl.Tuner")


def build_model(hp: Any) -> Any:
    import keras

    model = keras.Sequential()
    model.add(keras.layers.Flatten())
    for i in range(hp.Int("num_layers", 1, 3)):
        model.add(
            keras.layers.Dense(
                units=hp.Int(f"units_{i}", min_value=32, max_value=512, step=32),
                activation=hp.Choice("activation", ["relu", "tanh"]),
            )
        )
    if hp.Boolean("dropout"):
        model.add(keras.layers.Dropout(rate=0.25))
    model.add(keras.layers.Dense(10, activation="softmax"))
    learning_rate = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def one_run(tool: str, seed: int, directory: str) -> dict[str, Any]:
    import keras
    import numpy as np
    from sklearn.datasets import load_digits

    keras.utils.set_random_seed(seed)
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")
    y = keras.utils.to_categorical(digits.target, 10)
    order = np.random.default_rng(0).permutation(len(x))  # one split for every tool and seed
    x, y = x[order], y[order]
    x_train, y_train, x_val, y_val, x_test, y_test = x[:1000], y[:1000], x[1000:1300], y[1000:1300], x[1300:], y[1300:]
    options = {
        "objective": "val_accuracy",
        "max_trials": 3,
        "executions_per_trial": 2,
        "overwrite": True,
        "directory": directory,
        "project_name": "helloworld",
        "seed": seed,
    }
    if tool == "automl.Tuner":
        import automl

        tuner = automl.Tuner(hypermodel=build_model, **options)
    else:
        import keras_tuner

        tuner = keras_tuner.RandomSearch(hypermodel=build_model, **options)
    start = time.perf_counter()
    tuner.search(x_train, y_train, epochs=2, validation_data=(x_val, y_val), verbose=0)
    seconds = time.perf_counter() - start
    best = tuner.get_best_models(num_models=1)[0]
    test_accuracy = float(np.mean(np.argmax(best.predict(x_test, verbose=0), axis=1) == np.argmax(y_test, axis=1)))
    best_hp = tuner.get_best_hyperparameters(1)[0]
    scores = [t.score for t in tuner.oracle.get_best_trials(1)] if hasattr(tuner, "oracle") else []
    val = scores[0] if scores else float(tuner.result.best_value)
    return {
        "tool": tool,
        "seed": seed,
        "val": float(val),
        "test": test_accuracy,
        "seconds": seconds,
        "best": dict(best_hp.values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--one", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory(prefix="automl-tutorial-") as tmp:
            print(json.dumps(one_run(args.one, args.seed, tmp)))
        return
    rows = []
    for seed in range(args.seeds):
        for tool in TOOLS:  # alternate, so a noisy minute on this shared machine hits both
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.tutorial", "--one", tool, "--seed", str(seed)],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(rows[-1]["tool"], seed, f"val {rows[-1]['val']:.3f} test {rows[-1]['test']:.3f}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "# KerasTuner's getting-started flow: RandomSearch vs automl.Tuner",
        "",
        f"`python -m benchmarks.tutorial --seeds {args.seeds}`: max_trials=3, executions_per_trial=2, 2 epochs,",
        "8x8 digits (1,000 train / 300 validation / 497 test). Median over seeds (min-max in brackets).",
        "",
        "| tuner | best val accuracy | test accuracy of the best model | search seconds |",
        "|---|---:|---:|---:|",
    ]
    for tool in TOOLS:
        mine = [r for r in rows if r["tool"] == tool]

        def cell(key: str, digits: int = 3, rows: list[dict[str, Any]] = mine) -> str:
            values = [r[key] for r in rows]
            return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"

        lines.append(f"| `{tool}` | {cell('val')} | {cell('test')} | {cell('seconds', 1)} |")
    lines += ["", "Per seed:", "", "| seed | tuner | val | test | seconds |", "|---:|---|---:|---:|---:|"]
    lines += [f"| {r['seed']} | `{r['tool']}` | {r['val']:.3f} | {r['test']:.3f} | {r['seconds']:.1f} |" for r in rows]
    (OUT / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
