"""Translation quality against the known truth: the default CLI search, then ``automl translate`` on held-out images.

On the generated demos each domain is the same kind of digit in a known pixel style (``automl.data.domains``), so
the true translation of every held-out image is known. For each family and seed:

    automl search --family F --data DEMO --trials 3 --epochs 5 --seed S     (default flags otherwise)
    automl translate --model models:/F@champion --data held-out.npz --to T  (per target domain T)

and the mean absolute pixel error (pixels in [0, 1]) of the translations against the truth, next to that of the
untranslated images (the naive baseline). The done-when bar is a ratio of at most 0.5 for every target domain.
``--evidence`` also trains each family's starting configuration with one param at its textbook value beside the
shipped one (cyclegan's identity weight 0.5 / 0.0, stargan's normalization instance / none), per seed, in-process.

    python -m benchmarks.translation             # -> benchmarks/results/translation/results.{json,md}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import REPO

OUT = REPO / "benchmarks" / "results" / "translation"
CASES = [("cyclegan", "demo:digit-domains"), ("stargan", "demo:digit-styles")]


def _automl(*args: str, home: Path) -> float:
    started = time.perf_counter()
    env = {**os.environ, "AUTOML_HOME": str(home)}
    done = subprocess.run(["automl", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"automl {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def errors(translated: np.ndarray, images: np.ndarray, sources: list[str], target: str) -> tuple[float, float]:
    """MAE of the translations and of the untranslated images against the true translation (pixels in [0, 1])."""
    from automl.data.domains import true_translation

    truth = np.stack([true_translation(x, s, target) for x, s in zip(images, sources, strict=True)])
    return float(np.mean(np.abs(translated - truth))), float(np.mean(np.abs(images - truth)))


def run_case(family: str, demo: str, seed: int, trials: int, epochs: int) -> list[dict[str, Any]]:
    from automl.data import load_dataset

    dataset = load_dataset(demo, family=family, seed=seed)  # the split the search trains on (--seed S)
    names = [str(n) for n in dataset.metadata["labels"]]
    rows = []
    with tempfile.TemporaryDirectory(prefix="automl-translation-") as tmp:
        home = Path(tmp) / "home"
        search_s = _automl(
            "search", "--family", family, "--data", demo, "--trials", str(trials), "--epochs", str(epochs),
            "--seed", str(seed), "--study", family, "--quiet", home=home,
        )  # fmt: skip
        for target, name in enumerate(names):
            pick = dataset.y_test != target
            images = np.asarray(dataset.raw_test[pick], dtype="float32")
            np.savez(Path(tmp) / "held_out.npz", x=images)
            out = Path(tmp) / f"to_{name}"
            _automl(
                "translate", "--model", f"models:/{family}@champion", "--data", str(Path(tmp) / "held_out.npz"),
                "--to", name, "--output", str(out), home=home,
            )  # fmt: skip
            with np.load(out / "held_out.npz") as written:
                translated = written["x"] * float(dataset.metadata["pixel_scale"])
            sources = [names[d] for d in dataset.y_test[pick]]
            mae, untranslated = errors(translated, images * float(dataset.metadata["pixel_scale"]), sources, name)
            rows.append(
                {"family": family, "data": demo, "seed": seed, "target": name, "images": int(pick.sum()),
                 "mae": mae, "untranslated_mae": untranslated, "ratio": mae / untranslated, "search_s": search_s}
            )  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    return rows


# (family, demo, param, the textbook value, the shipped one): why the starting points are what they are
EVIDENCE = [
    ("cyclegan", "demo:digit-domains", "identity_weight", 0.5, 0.0),
    ("stargan", "demo:digit-styles", "normalization", "instance", "none"),
]


def start_evidence(epochs: int, seeds: int) -> list[dict[str, Any]]:
    """Each family's starting point with one param at the textbook value and at the shipped one, in-process."""
    import keras

    from automl import families
    from automl.data import adapt_input, load_dataset, predict_inputs
    from automl.runner import package
    from automl.spaces import load_default_space
    from automl.training import TrainingData, train

    rows = []
    for family_name, demo, param, *values in EVIDENCE:
        family = families.get(family_name)
        for value in values:
            for seed in range(seeds):
                dataset = load_dataset(demo, family=family_name, seed=seed)
                names = [str(n) for n in dataset.metadata["labels"]]
                params = {**load_default_space(family_name).start_points("translation", "image")[0], param: value}
                keras.utils.set_random_seed(seed)
                data = TrainingData.from_dataset(dataset)
                model, log = train(family, params, dataset, data, epochs, "val_fid", "minimize")
                packaged = package(model, family, dataset, "evidence", 0, "checkpoint")
                scale = float(dataset.metadata["pixel_scale"])
                ratios = []
                for target, name in enumerate(names):
                    pick = dataset.y_test != target
                    images = np.asarray(dataset.raw_test[pick], dtype="float32")
                    inputs = adapt_input(packaged.metadata, {"image": images, "domain": np.full(len(images), target)})
                    translated = predict_inputs(packaged.model, inputs)
                    sources = [names[d] for d in dataset.y_test[pick]]
                    mae, untranslated = errors(translated, images * scale, sources, name)
                    ratios.append(mae / untranslated)
                rows.append(
                    {"family": family_name, "param": param, "value": value, "seed": seed,
                     "val_fid": log.best_value, "worst_ratio": float(max(ratios))}
                )  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(rows: list[dict[str, Any]], evidence: list[dict[str, Any]], trials: int, epochs: int) -> str:
    lines = [
        f"# Translation against the known truth ({trials} trials x {epochs} epochs, default flags)",
        "",
        f"`{sys.executable.rsplit('/', 1)[-1]} -m benchmarks.translation`; MAE of held-out translations against the",
        "true pixel mapping (pixels in [0, 1]); untranslated: the input image itself. Median over seeds.",
        "",
        "| family | target domain | seeds | MAE translated | MAE untranslated | ratio (median) | ratio (worst) "
        "| search s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    keys = sorted({(r["family"], r["target"]) for r in rows})
    for family, target in keys:
        group = [r for r in rows if r["family"] == family and r["target"] == target]
        med = {k: statistics.median(r[k] for r in group) for k in ("mae", "untranslated_mae", "ratio", "search_s")}
        lines.append(
            f"| {family} | {target} | {len(group)} | {med['mae']:.3f} | {med['untranslated_mae']:.3f} | "
            f"{med['ratio']:.2f} | {max(r['ratio'] for r in group):.2f} | {med['search_s']:.0f} |"
        )
    if evidence:
        lines += [
            "",
            f"Evidence for the starting points: the start configuration trained once per seed ({epochs} epochs,",
            "`keras.utils.set_random_seed(seed)`), one param at the textbook value and at the shipped one. Median",
            "over seeds of the validation FID and of the worst target's MAE ratio:",
            "",
            "| family | param | value | seeds | val FID | worst MAE ratio |",
            "|---|---|---|---:|---:|---:|",
        ]
        for family, param, *values in ((e[0], e[2], *e[3:]) for e in EVIDENCE):
            for value in values:
                group = [e for e in evidence if e["family"] == family and e["value"] == value]
                if group:
                    fid = statistics.median(e["val_fid"] for e in group)
                    worst = statistics.median(e["worst_ratio"] for e in group)
                    lines.append(f"| {family} | {param} | {value} | {len(group)} | {fid:.1f} | {worst:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--families", nargs="*", default=[f for f, _ in CASES])
    parser.add_argument("--evidence", action="store_true", help="also the evidence for the starting points")
    parser.add_argument("--keep", type=Path, help="a results.json whose rows of the families not run are kept")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = []
    for family, demo in CASES:
        if family in args.families:
            for seed in range(args.seeds):
                rows += run_case(family, demo, seed, args.trials, args.epochs)
    evidence = start_evidence(args.epochs, args.seeds) if args.evidence else []
    if args.keep is not None and args.keep.is_file():
        rows = [r for r in json.loads(args.keep.read_text())["rows"] if r["family"] not in args.families] + rows
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"rows": rows, "evidence": evidence}, indent=1))
    (args.out / "results.md").write_text(markdown(rows, evidence, args.trials, args.epochs))
    print(markdown(rows, evidence, args.trials, args.epochs))


if __name__ == "__main__":
    main()
