"""Benchmark automl against KerasTuner and a hand-written Optuna+MLflow loop: overhead, then search quality.

    python -m benchmarks.run            # the default run: < 10 minutes on 2 cores
    python -m benchmarks.run --quick    # smoke test: ~2 minutes, results in benchmarks/results/quick/

Writes results.md, results.json and PNG plots to the output folder. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import machine, report
from benchmarks.arms import ARMS, METHODS, VARIANTS
from benchmarks.common import REPO, sample_configs, save_configs
from benchmarks.procs import Worker, WorkerError

RESULTS = REPO / "benchmarks" / "results"
WORK = REPO / "benchmarks" / ".work"  # git-ignored: sqlite stores, checkpoints, worker logs
# seconds a quality run takes beyond its budget T: setup, the trial running at T, the final model (guesses from
# runs on 2 cores, used only to fit the default run into --max-minutes; the real numbers are in results.json)
EXTRA_S = {"automl": 10.0, "optuna_tpe": 3.0, "kt_random": 4.0, "kt_bayes": 4.0, "kt_hyperband": 4.0}
IMPORT_GUESS_S = 6.0
REPORT_GUESS_S = 15.0
MIN_BUDGET_S = 10.0

PRESETS: dict[str, dict[str, Any]] = {
    "default": {"configs": 20, "epochs": 10, "block": 5, "budget_s": 15.0, "seeds": 3, "out": RESULTS},
    "quick": {"configs": 2, "epochs": 2, "block": 1, "budget_s": 15.0, "seeds": 1, "out": RESULTS / "quick"},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: 2 configs x 2 epochs, 15 s x 1 seed")
    parser.add_argument("--configs", type=int, help="overhead: number of fixed configs (default 20)")
    parser.add_argument("--epochs", type=int, help="epochs per trial, both parts (default 10)")
    parser.add_argument("--block", type=int, help="overhead: trials per interleaved block (default 5)")
    parser.add_argument("--budget-s", type=float, help="quality: wall-clock budget T per search (default 15)")
    parser.add_argument("--seeds", type=int, help="quality: seeds per method (default 3)")
    parser.add_argument("--config-seed", type=int, default=0, help="seed of the random draw of the fixed configs")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"overhead arms (default {','.join(ARMS)})")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"quality methods ({','.join(METHODS)})")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=10.0,
        help="shrink the quality budget T (never below 10 s) so the whole run fits; 0 turns this off",
    )
    parser.add_argument("--out", type=Path, help="output folder (default benchmarks/results[/quick])")
    parser.add_argument("--keep-work", action="store_true", help="keep benchmarks/.work/<run> (stores, logs)")
    args = parser.parse_args(argv)
    preset = PRESETS["quick" if args.quick else "default"]
    for key, value in preset.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.arms = [a for a in args.arms.split(",") if a]
    args.methods = [m for m in args.methods.split(",") if m]
    for name in args.arms:
        if name not in ARMS:
            parser.error(f"unknown arm '{name}' (valid: {', '.join(ARMS)})")
    for name in args.methods:
        if name not in METHODS + VARIANTS:
            parser.error(f"unknown method '{name}' (valid: {', '.join(METHODS + VARIANTS)})")
    return args


def balanced_orders(names: list[str], rounds: int) -> list[list[str]]:
    """Rotations and their reverses (ABC, CBA, BCA, ACB, CAB, BAC): each arm runs first, middle and last alike."""
    orders = []
    for r in range(rounds):
        k = (r // 2) % max(1, len(names))
        rotated = names[k:] + names[:k]
        orders.append(list(reversed(rotated)) if r % 2 else rotated)
    return orders


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---- a) overhead --------------------------------------------------------------------------------------------


def run_overhead(args: argparse.Namespace, configs_path: Path, work: Path) -> dict[str, Any]:
    n = len(json.loads(configs_path.read_text()))
    rounds = math.ceil(n / args.block)
    orders = balanced_orders(list(args.arms), rounds)
    workers: dict[str, Worker] = {}
    arms: dict[str, dict[str, Any]] = {name: {} for name in args.arms}
    errors: dict[str, str] = {}
    block_timeout = 120.0 + 30.0 * args.block * args.epochs

    def wait_ready(name: str) -> None:
        try:
            arms[name]["ready"] = workers[name].expect("ready", 300)
            log(f"overhead: {name} ready (imports {arms[name]['ready']['import_s']:.1f} s)")
        except WorkerError as exc:
            errors[name] = str(exc)

    def call(name: str, cmd: str, event: str, timeout: float) -> dict[str, Any] | None:
        if name in errors:
            return None
        try:
            return workers[name].request(cmd, event, timeout)
        except WorkerError as exc:
            errors[name] = str(exc)
            log(f"  {name} failed: {str(exc).splitlines()[0]}")
            return None

    try:
        for name in args.arms:  # one at a time: imports are CPU-bound too (starting them at once saves nothing)
            workers[name] = Worker(
                name,
                [
                    "--role", "overhead", "--name", name, "--configs", str(configs_path), "--epochs",
                    str(args.epochs), "--block", str(args.block), "--workdir", str(work / "overhead" / name),
                ],
                work / "logs" / f"overhead-{name}.log",
            )  # fmt: skip
            wait_ready(name)
        for name in orders[0]:
            done = call(name, "setup", "setup_done", 300)
            if done:
                log(f"overhead: {name} set up in {done['setup_s']:.1f} s")
        for r, order in enumerate(orders):
            for name in order:
                start = time.perf_counter()
                if call(name, "run", "block_done", block_timeout):
                    log(f"overhead: round {r + 1}/{rounds} {name}: {time.perf_counter() - start:.1f} s")
        for name in reversed(orders[0]):
            finished = call(name, "finish", "finished", 300)
            if finished:
                arms[name].update(finished)
    finally:
        for worker in workers.values():  # all exit at once; each is reaped with its own usage
            worker.request_exit()
        for name, worker in workers.items():
            arms[name]["rusage"] = worker.close()
    return {"orders": orders, "block": args.block, "n_configs": n, "arms": arms, "errors": errors}


# ---- b) quality at an equal wall-clock budget ---------------------------------------------------------------


def plan_budget(args: argparse.Namespace, elapsed_s: float) -> tuple[float, str | None]:
    """The budget T that fits the rest of the run into --max-minutes (never above the asked T)."""
    runs = len(args.methods) * args.seeds
    if not args.max_minutes or not runs:
        return args.budget_s, None
    extra = args.seeds * sum(EXTRA_S.get(m, 5.0) for m in args.methods)
    left = args.max_minutes * 60 - elapsed_s - len(args.methods) * IMPORT_GUESS_S - REPORT_GUESS_S - extra
    fitting = math.floor(left / runs)
    if fitting >= args.budget_s:
        return args.budget_s, None
    budget = max(MIN_BUDGET_S, float(fitting))
    note = (
        f"T lowered from {args.budget_s:g} s to {budget:g} s to fit --max-minutes {args.max_minutes:g}: "
        f"{elapsed_s:.0f} s were spent before the quality part"
    )
    if fitting < MIN_BUDGET_S:
        note += f" (even T = {MIN_BUDGET_S:g} s does not fit: the run will take longer)"
    return budget, note


def run_quality(args: argparse.Namespace, work: Path, run_started: float) -> dict[str, Any]:
    budget, note = plan_budget(args, time.perf_counter() - run_started)
    if note:
        log(f"quality: {note}")
    orders = balanced_orders(list(args.methods), args.seeds)
    workers: dict[str, Worker] = {}
    ready: dict[str, Any] = {}
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.methods}
    errors: dict[str, str] = {}
    usage: dict[str, Any] = {}

    def wait_ready(name: str) -> None:
        try:
            ready[name] = workers[name].expect("ready", 300)
        except WorkerError as exc:
            errors[name] = str(exc)

    try:
        for name in args.methods:
            workers[name] = Worker(
                name,
                ["--role", "quality", "--name", name, "--epochs", str(args.epochs), "--workdir",
                 str(work / "quality" / name)],
                work / "logs" / f"quality-{name}.log",
            )  # fmt: skip
            wait_ready(name)
        log(f"quality: {len(ready)} workers ready; T = {budget:g} s, {args.seeds} seed(s)")
        for seed, order in enumerate(orders):
            for name in order:
                if name in errors:
                    continue
                try:
                    result = workers[name].request("run", "result", budget * 4 + 300, seed=seed, budget_s=budget)
                except WorkerError as exc:
                    errors[name] = str(exc)
                    log(f"  {name} failed: {str(exc).splitlines()[0]}")
                    continue
                result.pop("event", None)
                runs[name].append({"seed": seed, **result})
                best = max((v for _, v in result["finished"] if v is not None), default=None)
                log(
                    f"quality: seed {seed} {name}: {len(result['finished'])} trials, best val "
                    f"{'-' if best is None else f'{best:.4f}'}, test {result.get('test_accuracy')}, "
                    f"{result['total_s']:.1f} s"
                )
    finally:
        for worker in workers.values():
            worker.request_exit()
        for name, worker in workers.items():
            usage[name] = worker.close()
    return {
        "budget_s": budget,
        "budget_note": note,
        "seeds": args.seeds,
        "orders": orders,
        "ready": ready,
        "runs": runs,
        "rusage": usage,
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = WORK / stamp
    work.mkdir(parents=True, exist_ok=True)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    log(f"benchmark run {stamp}: work in {work}, results to {out}")

    machine_info = machine.describe()
    configs = sample_configs(args.configs, args.config_seed)
    configs_path = work / "configs.json"
    save_configs(configs, configs_path)
    results: dict[str, Any] = {
        "meta": {
            "command": command.strip(),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "mode": "quick" if args.quick else "default",
            "settings": {
                "data": "demo:digits (automl.data.load_dataset, seed=0 for overhead; seed=s for quality seed s)",
                "configs": args.configs,
                "config_seed": args.config_seed,
                "epochs": args.epochs,
                "block": args.block,
                "budget_s_asked": args.budget_s,
                "seeds": args.seeds,
                "arms": args.arms,
                "methods": args.methods,
                "max_minutes": args.max_minutes,
            },
        },
        "machine": machine_info,
        "configs": configs,
    }
    if not args.skip_overhead:
        log(f"a) overhead: {len(configs)} configs x {args.epochs} epochs x {len(args.arms)} arms")
        results["overhead"] = run_overhead(args, configs_path, work)
    if not args.skip_quality:
        log(f"b) quality: {len(args.methods)} methods x {args.seeds} seed(s)")
        results["quality"] = run_quality(args, work, started)
    results["machine"]["load_average_end"] = machine.load_average()
    results["meta"]["total_s"] = time.perf_counter() - started
    results["meta"]["finished"] = datetime.datetime.now().isoformat(timespec="seconds")

    report.summarize(results)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    plots = report.plot(results, out)
    markdown = report.markdown(results, plots)
    (out / "results.md").write_text(markdown, encoding="utf-8")
    if not args.keep_work:
        shutil.rmtree(work / "overhead", ignore_errors=True)
        shutil.rmtree(work / "quality", ignore_errors=True)
    print(markdown)
    log(f"done in {results['meta']['total_s'] / 60:.1f} min: {out / 'results.md'} (worker logs in {work / 'logs'})")
    failed = {**results.get("overhead", {}).get("errors", {}), **results.get("quality", {}).get("errors", {})}
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
