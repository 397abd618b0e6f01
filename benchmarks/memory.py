"""Parent-process RSS over a long search, with and without --isolation process (issue: reliability).

    python -m benchmarks.memory [--trials 200] [--epochs 1] [--data demo:wine]

Each arm runs in a fresh subprocess; the parent's RSS is sampled after every finished trial, and the
figures at 10, 100 and 200 trials plus the wall time of each arm go to benchmarks/results/memory.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import rss_mb

RESULTS = Path(__file__).parent / "results"
CHECKPOINTS = (10, 100, 200)


class _Sampler:
    """A progress reporter that records the parent's RSS after each finished trial."""

    def __init__(self) -> None:
        self.samples: list[tuple[int, float]] = []

    def on_start(self, study: str, total: int, done: int, direction: str, metric: str) -> None:
        self.samples.append((0, rss_mb()))

    def on_progress(self, done: int, best: float | None, last: str) -> None:
        if last:
            self.samples.append((done, rss_mb()))

    def on_finalize(self, message: str) -> None:
        pass


def run_arm(isolation: str, trials: int, epochs: int, data: str) -> dict[str, Any]:
    from automl.logs import import_backend_quietly, quiet_libraries

    quiet_libraries()
    import_backend_quietly()
    import automl

    sampler = _Sampler()
    with tempfile.TemporaryDirectory() as home:
        start = time.perf_counter()
        result = automl.search(
            data,
            trials=trials,
            epochs=epochs,
            study=f"mem-{isolation}",
            home=home,
            pruner="none",
            isolation=isolation,
            progress=sampler,
            max_failures=0,
        )
        wall = time.perf_counter() - start
    return {
        "isolation": isolation,
        "wall_s": wall,
        "fit_s": result.fit_seconds,
        "samples": sampler.samples,
        "states": result.states,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data", default="demo:wine")
    parser.add_argument("--arm", choices=["none", "process"])
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(run_arm(args.arm, args.trials, args.epochs, args.data)))
        return
    arms = []
    for isolation in ("none", "process"):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.memory",
                "--arm",
                isolation,
                "--trials",
                str(args.trials),
                "--epochs",
                str(args.epochs),
                "--data",
                args.data,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        arms.append(json.loads(out.stdout.strip().splitlines()[-1]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "memory.json").write_text(json.dumps(arms, indent=2))
    marks = [c for c in CHECKPOINTS if c <= args.trials]
    lines = [
        f"# Parent RSS over {args.trials} trials ({args.data}, {args.epochs} epoch(s) per trial)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}. "
        f"Command: `python -m benchmarks.memory --trials {args.trials} --epochs {args.epochs} --data {args.data}`",
        "",
        "| isolation | " + " | ".join(f"RSS after {m} trials (MB)" for m in marks) + " | wall (s) | in fit (s) |",
        "|---|" + "---|" * len(marks) + "---|---|",
    ]
    for arm in arms:
        by_done = dict(arm["samples"])
        cells = [f"{by_done.get(m, float('nan')):.0f}" for m in marks]
        lines.append(f"| {arm['isolation']} | " + " | ".join(cells) + f" | {arm['wall_s']:.1f} | {arm['fit_s']:.1f} |")
    none, process = arms
    lines += ["", f"Wall-time cost of process isolation: {process['wall_s'] / none['wall_s'] - 1:+.0%}."]
    (RESULTS / "memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
