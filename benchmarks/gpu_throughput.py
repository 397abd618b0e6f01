"""Trial throughput on one accelerator: 1 vs K automl trials sharing it (run by ``benchmarks/gpu_check.sh``).

    KERAS_BACKEND=jax python -m benchmarks.gpu_throughput --concurrency 1 4 --configs 20 --epochs 10

Two ways to share the device, both on the same fixed configs as the overhead benchmark:

- ``processes``: K overhead-benchmark workers (``benchmarks/worker.py``, arm ``automl``), each with every K-th config
  in its own automl home, all started together; this needs nothing from automl beyond the runner API.
- ``native``: one ``automl.search(..., workers=K, trials_per_gpu=K)`` on a study with the configs enqueued, when
  ``SearchConfig`` has ``trials_per_gpu`` (automl then spawns its own workers on one sqlite study).

``--mode auto`` runs ``native`` when automl has it, and ``processes`` always. Results go to ``OUT/gpu_results.json``
and ``OUT/gpu_results.md`` after every measurement, so a run cut short by a timeout still leaves what it measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import machine
from benchmarks.common import DATA, FAMILY, REPO, read_configs, sample_configs, save_configs
from benchmarks.procs import Worker, WorkerError

WORK = REPO / "benchmarks" / ".work" / "gpu"


def has_native_sharing() -> bool:
    from automl.config import SearchConfig

    return "trials_per_gpu" in {f.name for f in dataclasses.fields(SearchConfig)}


def measure_processes(k: int, configs_path: Path, epochs: int, work: Path, timeout: float) -> dict[str, Any]:
    """K overhead workers at once; the clock runs from 'go' to the last worker's last trial."""
    configs = read_configs(configs_path)
    shares = [configs[i::k] for i in range(k)]
    workers: list[Worker] = []
    try:
        for index, share in enumerate(shares):
            path = work / f"configs-{index}.json"
            save_configs(share, path)
            workers.append(
                Worker(
                    f"automl-{k}x-{index}",
                    [
                        "--role", "overhead", "--name", "automl", "--configs", str(path), "--epochs", str(epochs),
                        "--block", str(len(share)), "--workdir", str(work / f"worker-{index}"),
                    ],
                    work / "logs" / f"worker-{index}.log",
                )
            )  # fmt: skip
        ready = [w.expect("ready", timeout) for w in workers]
        for w in workers:
            w.send("setup")
        setups = [w.expect("setup_done", timeout) for w in workers]
        start = time.perf_counter()
        for w in workers:
            w.send("run")
        ends = []
        for w in workers:
            w.expect("block_done", timeout)
            ends.append(time.perf_counter() - start)
        trials_s = time.perf_counter() - start
        for w in workers:
            w.send("finish")
        finished = [w.expect("finished", timeout) for w in workers]
    finally:
        usage = [w.close() for w in workers]
    fit_s = sum(f["seconds"] for done in finished for f in done["fits"])
    return {
        "mode": "processes",
        "concurrency": k,
        "trials": len(configs),
        "trials_s": trials_s,
        "trials_per_min": len(configs) / trials_s * 60,
        "fit_s_sum": fit_s,
        "worker_trial_loop_s": [round(x, 2) for x in ends],
        "setup_s": [round(s["setup_s"], 2) for s in setups],
        "import_s": [round(r["import_s"], 2) for r in ready],
        "devices": ready[0].get("devices"),
        "backend": ready[0].get("backend"),
        "peak_rss_mb": [round(u.get("peak_rss_mb", 0), 0) for u in usage],
        "all_epochs": all(f["epochs"] == epochs for done in finished for f in done["fits"]),
        "mean_best_val_accuracy": _mean([v for done in finished for v in done["values"] if v is not None]),
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def measure_native(k: int, configs_path: Path, epochs: int, work: Path, timeout: float) -> dict[str, Any]:
    """``automl.search(workers=K, trials_per_gpu=K)`` in a child process; see ``native_child``."""
    out = work / "native.json"
    log = work / "native.log"
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "benchmarks.gpu_throughput", "--native-child", str(k), "--configs-file",
               str(configs_path), "--epochs", str(epochs), "--out", str(work)]  # fmt: skip
    with log.open("w") as stderr:
        code = subprocess.run(command, cwd=REPO, env=env, stdout=stderr, stderr=stderr, timeout=timeout).returncode
    if code != 0 or not out.is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise WorkerError(f"native k={k} exited {code}\n{tail}")
    return dict(json.loads(out.read_text()))


def native_child(k: int, configs_path: Path, epochs: int, work: Path) -> None:
    """Enqueue the configs on a fresh study, then one automl search with K workers sharing the device."""
    import keras
    import optuna

    import automl
    from benchmarks.common import quiet_libraries

    if keras.backend.backend() == "jax":
        import jax

    quiet_libraries()
    configs = read_configs(configs_path)
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    name = f"gpu-native-{k}"
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{home / 'optuna.db'}", direction="maximize")
    for params in configs:
        study.enqueue_trial(params)
    from automl.config import SearchConfig

    known = {f.name for f in dataclasses.fields(SearchConfig)}
    extras = {"report": False} if "report" in known else {}  # the HTML/PNG report is not what is measured here
    if "isolation" in known:
        extras["isolation"] = "none"  # K trials share the device inside each worker process, as measured on CPU
    start = time.perf_counter()
    result = automl.search(
        DATA,
        FAMILY,
        trials=len(configs),
        epochs=epochs,
        pruner="none",
        home=str(home),
        study=name,
        workers=k,
        trials_per_gpu=k,
        **extras,
    )
    wall = time.perf_counter() - start
    trials = optuna.load_study(study_name=name, storage=f"sqlite:///{home / 'optuna.db'}").get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    trials_s = (max(ends) - min(starts)).total_seconds() if starts and ends else None
    record = {
        "mode": "native",
        "concurrency": k,
        "trials": len(configs),
        "trials_s": trials_s,
        "trials_per_min": len(configs) / trials_s * 60 if trials_s else None,
        "search_wall_s": wall,
        "fit_s_sum": result.fit_seconds,
        "states": {s: n for s, n in result.states.items() if n},
        "stopped_reason": result.stopped_reason,
        "backend": keras.backend.backend(),
        "devices": [str(d) for d in jax.devices()] if keras.backend.backend() == "jax" else [],
    }
    (work / "native.json").write_text(json.dumps(record, indent=1))


def markdown(record: dict[str, Any]) -> str:
    m = record["machine"]
    lines = [
        "# automl trial throughput on one accelerator",
        "",
        f"`{record['command']}`, {record['started']}; {record['configs']} fixed configs x {record['epochs']} epochs "
        f"on demo:digits; Keras backend {record.get('backend')}; devices {record.get('devices')}.",
        f"Machine: {m.get('cpu')}, {m.get('usable_cpus')} CPUs, {m.get('memory_gb')} GiB; GPUs: "
        f"{', '.join(m.get('gpus') or []) or 'none'}; "
        + ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items()),
        "",
        "| mode | trials sharing the device | trials | trial phase s | trials/min | speed-up vs 1 | Σfit s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    base: dict[str, float] = {}
    for row in record["measurements"]:
        if row.get("concurrency") == 1 and row.get("trials_per_min"):
            base[row["mode"]] = row["trials_per_min"]
    for row in record["measurements"]:
        if "error" in row:
            lines.append(f"| {row['mode']} | {row['concurrency']} | failed: {row['error'].splitlines()[0]} ||||| ")
            continue
        speedup = row["trials_per_min"] / base[row["mode"]] if row["mode"] in base and row["trials_per_min"] else None
        lines.append(
            f"| {row['mode']} | {row['concurrency']} | {row['trials']} | {row['trials_s']:.1f} "
            f"| {row['trials_per_min']:.1f} | {'-' if speedup is None else f'{speedup:.2f}x'} "
            f"| {row['fit_s_sum']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--configs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--mode", choices=("auto", "processes", "native"), default="auto")
    parser.add_argument("--timeout", type=float, default=400, help="seconds per measurement before it is killed")
    parser.add_argument("--deadline-s", type=float, help="skip measurements that would end after this many seconds")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "gpu")
    parser.add_argument("--native-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--configs-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.native_child:
        native_child(args.native_child, args.configs_file, args.epochs, args.out)
        return 0

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = WORK / stamp
    work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    configs_path = work / "configs.json"
    save_configs(sample_configs(args.configs, 0), configs_path)
    modes = ["processes"] if args.mode == "processes" else ["native"] if args.mode == "native" else []
    if args.mode == "auto":
        modes = ["processes", "native"] if has_native_sharing() else ["processes"]
    deadline = time.perf_counter() + args.deadline_s if args.deadline_s else float("inf")
    record: dict[str, Any] = {
        "command": "python -m benchmarks.gpu_throughput " + " ".join(sys.argv[1:] if argv is None else argv),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "configs": args.configs,
        "epochs": args.epochs,
        "env": {k: v for k, v in os.environ.items() if k.startswith(("KERAS_", "XLA_", "JAX_", "CUDA_"))},
        "machine": machine.describe(),
        "measurements": [],
    }
    took: dict[int, float] = {}  # seconds the last measurement with K trials sharing took
    for mode in modes:
        for k in args.concurrency:
            left = deadline - time.perf_counter()
            guess = took.get(k, max(took.values(), default=0.0))
            if left < guess or left < 30:
                print(f"skipping {mode} x{k}: {left:.0f} s left of --deadline-s, it took {guess:.0f} s", flush=True)
                record["measurements"].append({"mode": mode, "concurrency": k, "error": "skipped: out of time"})
                continue
            began = time.perf_counter()
            print(f"[{time.strftime('%H:%M:%S')}] {mode}: {k} trial(s) sharing the device ...", flush=True)
            measure = measure_native if mode == "native" else measure_processes
            try:
                row = measure(k, configs_path, args.epochs, work / f"{mode}-{k}", min(args.timeout, left))
                for key in ("backend", "devices"):
                    if row.get(key):
                        record[key] = row[key]
            except (WorkerError, subprocess.TimeoutExpired) as exc:
                row = {"mode": mode, "concurrency": k, "error": str(exc)}
            took[k] = time.perf_counter() - began
            row["measured_in_s"] = time.perf_counter() - began
            record["measurements"].append(row)
            print(json.dumps({k2: v for k2, v in row.items() if k2 != "error"}), flush=True)
            if "error" in row:
                print(row["error"], file=sys.stderr, flush=True)
            (args.out / "gpu_results.json").write_text(json.dumps(record, indent=1, default=str))
            (args.out / "gpu_results.md").write_text(markdown(record))
    print(markdown(record))
    return 1 if any("error" in row for row in record["measurements"]) else 0


if __name__ == "__main__":
    sys.exit(main())
