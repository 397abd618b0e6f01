"""Trials per minute of `automl search --workers 1` vs `--workers 2` on one machine (issue: reliability).

    python -m benchmarks.workers [--trials 16] [--epochs 5] [--data demo:digits] [--repeats 1]

Each arm is the real CLI in a fresh subprocess on its own sqlite store. The arms alternate (1, 2, 1, 2, ...) so
load on a shared machine hits both alike. Throughput is counted twice: over the whole command (imports, setup,
registry and report included) and over the trial phase only (first trial started to last trial finished, from
Optuna's own timestamps). Results go to benchmarks/results/workers.md and workers.json.
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

from automl.record import read_trial

RESULTS = Path(__file__).parent / "results"


def run_arm(workers: int, trials: int, epochs: int, data: str) -> dict[str, Any]:
    import optuna

    with tempfile.TemporaryDirectory(prefix="automl-workers-") as home:
        command = [
            sys.executable, "-m", "cli.main", "search", "--data", data, "--trials", str(trials),
            "--epochs", str(epochs), "--study", "w", "--pruner", "none", "--sampler", "random",
            "--workers", str(workers), "--home", home, "--quiet", "--json", "--no-report",
        ]  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"--workers {workers} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
        study = optuna.load_study(study_name="w", storage=f"sqlite:///{home}/optuna.db")
        finished = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
        states = sorted({t.state.name for t in finished})
        phase = (max(t.datetime_complete for t in finished) - min(t.datetime_start for t in finished)).total_seconds()
        fit = sum(float(read_trial(t).fit_seconds or 0.0) for t in finished)
    return {
        "workers": workers,
        "trials": len(finished),
        "states": states,
        "wall_s": wall,
        "trial_phase_s": phase,
        "fit_s": fit,
        "trials_per_min": 60 * len(finished) / wall,
        "trials_per_min_trial_phase": 60 * len(finished) / phase,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--data", default="demo:digits")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    runs = [run_arm(w, args.trials, args.epochs, args.data) for _ in range(args.repeats) for w in (1, 2)]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "workers.json").write_text(json.dumps(runs, indent=2))
    median = {
        w: {key: statistics.median(r[key] for r in runs if r["workers"] == w) for key in runs[0] if key.endswith("_s")
            or key.startswith("trials_per")}
        for w in (1, 2)
    }  # fmt: skip
    lines = [
        f"# Trials per minute: 1 vs 2 local workers ({args.data}, {args.trials} trials x {args.epochs} epochs)",
        "",
        f"Machine: {os.cpu_count()} logical CPUs. Command: `python -m benchmarks.workers --trials {args.trials} "
        f"--epochs {args.epochs} --data {args.data} --repeats {args.repeats}` (medians of {args.repeats} "
        "alternating run(s) per arm; sqlite store, random sampler, no pruning, no report).",
        "",
        "| workers | trials/min, whole command | trials/min, trial phase | wall s | trial phase s | Σfit s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for w, m in median.items():
        lines.append(
            f"| {w} | {m['trials_per_min']:.1f} | {m['trials_per_min_trial_phase']:.1f} | {m['wall_s']:.1f} "
            f"| {m['trial_phase_s']:.1f} | {m['fit_s']:.1f} |"
        )
    ratio = median[2]["trials_per_min_trial_phase"] / median[1]["trials_per_min_trial_phase"]
    whole = median[2]["trials_per_min"] / median[1]["trials_per_min"]
    lines += ["", f"2 workers / 1 worker: {ratio:.2f}x in the trial phase, {whole:.2f}x over the whole command."]
    (args.out / "workers.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
