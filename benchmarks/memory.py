"""RSS over a long search: the search process and each trial process, with and without recycling.

    python -m benchmarks.memory [--trials 200] [--epochs 1] [--data demo:wine]

Arms, each in a fresh subprocess:
* ``none``: ``--isolation none``, every trial in the search's process;
* ``process``: the default, a long-lived trial process replaced after ``--worker-max-trials`` trials (20) or
  ``--worker-max-rss-growth`` MB (200);
* ``process-no-recycling``: the same pool with both limits off, so one trial process runs every trial (what the
  recycling defaults are chosen from).

After every finished trial the search process's RSS and that of each live trial process are sampled. The figures
go to benchmarks/results/memory.md and memory.json.
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
ARMS: dict[str, dict[str, Any]] = {
    "none": {"isolation": "none"},
    "process": {"isolation": "process"},
    "process-no-recycling": {"isolation": "process", "worker_max_trials": 0, "worker_max_rss_growth_mb": 0.0},
}
MB = 2**20


def trial_processes() -> dict[int, float]:
    """RSS in MB of this process's trial processes: the children of its forkserver."""
    import psutil  # type: ignore[import-untyped]

    found: dict[int, float] = {}
    for child in psutil.Process().children():
        try:
            if "forkserver" not in " ".join(child.cmdline()):
                continue
            for worker in child.children():
                found[worker.pid] = worker.memory_info().rss / MB
        except psutil.Error:  # it ended between the listing and the read
            continue
    return found


class _Sampler:
    """A progress reporter that records the RSS of the search process and its trial processes per trial."""

    def __init__(self) -> None:
        self.samples: list[dict[str, Any]] = []

    def on_start(self, study: str, total: int, done: int, direction: str, metric: str) -> None:
        self.samples.append({"done": 0, "parent_mb": rss_mb(), "workers_mb": trial_processes()})

    def on_progress(self, done: int, best: float | None, last: str) -> None:
        if last:
            self.samples.append({"done": done, "parent_mb": rss_mb(), "workers_mb": trial_processes()})

    def on_finalize(self, message: str) -> None:
        pass


def run_arm(name: str, trials: int, epochs: int, data: str) -> dict[str, Any]:
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
            study=f"mem-{name}",
            home=home,
            pruner="none",
            progress=sampler,
            max_failures=0,
            **ARMS[name],
        )
        wall = time.perf_counter() - start
    return {"arm": name, "wall_s": wall, "fit_s": result.fit_seconds, "samples": sampler.samples}


def worker_lives(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per trial process: the trials it was sampled after, its RSS after the first and the last, MB per trial."""
    lives: dict[int, list[tuple[int, float]]] = {}
    for sample in samples:
        for pid, mb in sample["workers_mb"].items():
            lives.setdefault(int(pid), []).append((sample["done"], mb))
    rows = []
    for pid, seen in lives.items():
        after_trials = [(done, mb) for done, mb in seen if done > 0]
        if len(after_trials) < 2:
            continue
        (first_done, first_mb), (last_done, last_mb) = after_trials[0], after_trials[-1]
        rows.append(
            {
                "pid": pid,
                "trials": last_done - first_done + 1,
                "first_mb": first_mb,
                "last_mb": last_mb,
                "mb_per_trial": (last_mb - first_mb) / (last_done - first_done),
            }
        )
    return rows


def summarize(arm: dict[str, Any], marks: list[int]) -> dict[str, Any]:
    by_done = {s["done"]: s for s in arm["samples"]}
    lives = worker_lives(arm["samples"])
    first = next((s for s in arm["samples"] if s["done"] >= 10), arm["samples"][-1])
    last = arm["samples"][-1]

    def workers_at(done: int) -> float | None:
        sample = by_done.get(done)
        return max(sample["workers_mb"].values()) if sample and sample["workers_mb"] else None

    return {
        "parent_mb": {m: by_done[m]["parent_mb"] if m in by_done else None for m in marks},
        "parent_mb_per_trial": (last["parent_mb"] - first["parent_mb"]) / max(1, last["done"] - first["done"]),
        "worker_mb": {m: workers_at(m) for m in marks},
        "workers": len(lives),
        "worker_mb_per_trial_max": max((row["mb_per_trial"] for row in lives), default=None),
        # a fresh trial process after its first trial: the first and the last one of the run
        "fresh_worker_mb": (lives[0]["first_mb"], lives[-1]["first_mb"]) if lives else None,
        "lives": lives,
    }


def _cell(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _fresh(pair: tuple[float, float] | None) -> str:
    return "-" if pair is None else f"{pair[0]:.0f}, {pair[1]:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data", default="demo:wine")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--arm", choices=list(ARMS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(run_arm(args.arm, args.trials, args.epochs, args.data)))
        return
    arms = []
    for name in args.arms.split(","):
        argv = [sys.executable, "-m", "benchmarks.memory", "--arm", name, "--trials", str(args.trials)]
        argv += ["--epochs", str(args.epochs), "--data", args.data]
        out = subprocess.run(argv, capture_output=True, text=True, check=True)
        arms.append(json.loads(out.stdout.strip().splitlines()[-1]))
    marks = [c for c in CHECKPOINTS if c <= args.trials]
    for arm in arms:
        arm["summary"] = summarize(arm, marks)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.json").write_text(json.dumps(arms, indent=1))
    command = f"python -m benchmarks.memory --trials {args.trials} --epochs {args.epochs} --data {args.data}"
    lines = [
        f"# RSS over {args.trials} trials ({args.data}, {args.epochs} epoch(s) per trial)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}. "
        f"Command: `{command}`. MB per trial: the slope from the 10th trial to the last (search process), or "
        "from a trial process's first trial to its last (the steepest trial process).",
        "",
        "| arm | "
        + " | ".join(f"search process after {m} trials (MB)" for m in marks)
        + " | search process MB/trial | "
        + " | ".join(f"trial process after {m} (MB)" for m in marks)
        + " | trial processes | each after its first trial: first, last (MB) | steepest trial process MB/trial "
        "| wall (s) | in fit (s) |",
        "|---|" + "---:|" * (2 * len(marks) + 6),
    ]
    for arm in arms:
        s = arm["summary"]
        lines.append(
            f"| {arm['arm']} | "
            + " | ".join(_cell(s["parent_mb"][m]) for m in marks)
            + f" | {s['parent_mb_per_trial']:.2f} | "
            + " | ".join(_cell(s["worker_mb"][m]) for m in marks)
            + f" | {s['workers']} | {_fresh(s['fresh_worker_mb'])} | {_cell(s['worker_mb_per_trial_max'], 2)} "
            f"| {arm['wall_s']:.1f} | {arm['fit_s']:.1f} |"
        )
    walls = {arm["arm"]: arm["wall_s"] for arm in arms}
    if "none" in walls and "process" in walls:
        lines += ["", f"Wall-time cost of the default trial processes: {walls['process'] / walls['none'] - 1:+.0%}."]
    (args.out / "memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
