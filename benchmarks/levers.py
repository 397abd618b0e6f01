"""Each throughput lever of the performance issue, measured on its own: keep what pays, drop what doesn't.

    python -m benchmarks.levers [--configs 8] [--epochs 5] [--repeats 10]

1. data once per worker vs once per trial: the cost of one ``load_dataset("demo:digits")``;
2. MLflow metrics: one ``log_metric`` call per metric and epoch vs one ``log_metric`` batch per epoch vs one
   ``log_batch`` at the end of the trial (what automl does), on a real sqlite store;
3. after each trial: nothing vs ``clear_session(free_memory=False)`` (automl) vs ``clear_session()`` (it runs
   ``gc.collect``) vs ``gc.collect`` + ``clear_session`` (Optuna's ``gc_after_trial=True``);
4. the input pipeline: numpy arrays to ``fit`` (Keras's own adapter) vs one ``tf.data`` dataset built per
   worker and re-batched per trial vs automl's ``fit_model`` (shuffled index batches gathered from one tensor);
5. TF threads: TensorFlow's default vs intra-op 2 / inter-op 1 vs 1 / 1.

Parts 3-5 train the same configs (drawn from ``search_spaces/mlp.yaml``) in one fresh process per policy, so
one policy's leftovers cannot slow another, in two passes (the second in reverse order).
Writes benchmarks/results/levers.md and levers.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import load_data, quiet_libraries, rss_mb, sample_configs

RESULTS = Path(__file__).parent / "results"
POLICIES = (
    "arrays",
    "automl",
    "no_cleanup",
    "clear_session_gc",
    "optuna_gc_after_trial",
    "tf_data",
    "threads_2_1",
    "threads_1_1",
)
N_METRICS = 6  # loss, accuracy, and their val_ twins, plus two more (what a classification trial logs)


def _median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values)


# ---- 1. data ---------------------------------------------------------------------------------------------------
def data_load_seconds(repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        load_data()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---- 2. MLflow metrics ---------------------------------------------------------------------------------------
def mlflow_logging(repeats: int, epochs: int) -> dict[str, float]:
    """Per-trial milliseconds of each way of logging ``epochs`` x N_METRICS metrics to a child run."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from automl.sqlite_tuning import tune_sqlite_under

    ways: dict[str, list[float]] = {"per metric and epoch": [], "one batch per epoch": [], "one batch per trial": []}
    with tempfile.TemporaryDirectory() as home:
        tune_sqlite_under(Path(home))  # as automl's own stores
        uri = f"sqlite:///{home}/mlflow.db"
        client = MlflowClient(tracking_uri=uri)
        experiment = client.create_experiment("levers", artifact_location=Path(home, "a").as_uri())
        for repeat in range(repeats):
            order = list(ways)[repeat % 3 :] + list(ways)[: repeat % 3]
            for way in order:
                run = client.create_run(experiment).info.run_id
                now = int(time.time() * 1000)
                start = time.perf_counter()
                rows = [[Metric(f"m{k}", 0.5 + e, now, e) for k in range(N_METRICS)] for e in range(epochs)]
                if way == "per metric and epoch":
                    for row in rows:
                        for metric in row:
                            client.log_metric(run, metric.key, metric.value, metric.timestamp, metric.step)
                elif way == "one batch per epoch":
                    for row in rows:
                        client.log_batch(run, metrics=row)
                else:
                    client.log_batch(run, metrics=[metric for row in rows for metric in row])
                ways[way].append(time.perf_counter() - start)
                client.set_terminated(run)
    return {way: _median_ms(times) for way, times in ways.items()}


# ---- 3-5. training policies, one process each --------------------------------------------------------------
def run_policy(policy: str, configs: list[dict[str, Any]], epochs: int) -> dict[str, Any]:
    """Train every config under ``policy``; returns per-trial fit seconds and time outside fit."""
    if policy.startswith("threads_"):
        intra, inter = (int(n) for n in policy.removeprefix("threads_").split("_"))
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    import keras

    from automl.families.mlp import build_model
    from automl.training import TrainingData, compile_model, fit_model

    dataset = load_data()
    data = TrainingData.from_dataset(dataset)
    source = None
    if policy == "tf_data":
        import tensorflow as tf

        source = tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train)).cache()
        validation = tf.data.Dataset.from_tensor_slices((data.x_val, data.y_val)).cache()
    fits, outside = [], []
    for number, params in enumerate(configs):
        start = time.perf_counter()
        keras.utils.set_random_seed(number)
        model = compile_model(build_model(params, dataset.spec), params, dataset.task)
        batch = int(params["batch_size"])
        fit_start = time.perf_counter()
        if policy == "automl":
            fit_model(model, params, data, epochs, [])
        elif source is not None:
            model.fit(
                source.shuffle(len(data.y_train), seed=number).batch(batch).prefetch(2),
                validation_data=validation.batch(batch),
                epochs=epochs,
                verbose=0,
            )
        else:
            model.fit(
                data.x_train,
                data.y_train,
                validation_data=(data.x_val, data.y_val),
                batch_size=batch,
                epochs=epochs,
                verbose=0,
            )
        fit_end = time.perf_counter()
        del model
        if policy == "optuna_gc_after_trial":
            gc.collect()
            keras.utils.clear_session()
        elif policy == "clear_session_gc":
            keras.utils.clear_session()  # free_memory=True: runs gc.collect
        elif policy != "no_cleanup":
            keras.utils.clear_session(free_memory=False)
        end = time.perf_counter()
        fits.append(fit_end - fit_start)
        outside.append((fit_start - start) + (end - fit_end))
    return {"policy": policy, "fit_s": fits, "outside_s": outside, "rss_mb": rss_mb(), "n": len(fits)}


def _policy_in_subprocess(policy: str, configs_path: Path, epochs: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.levers", "--policy", policy, "--configs-file", str(configs_path)]
    command += ["--epochs", str(epochs)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"policy {policy} failed: {done.stderr.strip()[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _merge(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One policy's passes as one row: every trial's times, the largest RSS."""
    return {
        "policy": rows[0]["policy"],
        "fit_s": [t for row in rows for t in row["fit_s"]],
        "outside_s": [t for row in rows for t in row["outside_s"]],
        "rss_mb": max(row["rss_mb"] for row in rows),
        "passes": len(rows),
    }


# ---- the report --------------------------------------------------------------------------------------------------
def _write(results: dict[str, Any], args: argparse.Namespace) -> str:
    by = {row["policy"]: row for row in results["policies"]}
    base = by["arrays"]
    base_fit = sum(base["fit_s"])
    n = len(base["fit_s"])
    what = {
        "arrays": "numpy arrays to fit, clear_session(free_memory=False), TF default threads",
        "automl": "automl's fit_model: tf.data index batches gathered from one tensor",
        "no_cleanup": "no clear_session after a trial",
        "clear_session_gc": "clear_session() (with gc.collect)",
        "optuna_gc_after_trial": "gc.collect + clear_session (Optuna gc_after_trial=True)",
        "tf_data": "one tf.data dataset per worker, re-batched per trial",
        "threads_2_1": "TF threads: intra-op 2, inter-op 1",
        "threads_1_1": "TF threads: intra-op 1, inter-op 1",
    }
    data_s = results["data_load_s"]
    mlflow_ms = results["mlflow_ms_per_trial"]
    lines = [
        "# Throughput levers, one at a time",
        "",
        f"Command: `python -m benchmarks.levers --configs {args.configs} --epochs {args.epochs} --repeats "
        f"{args.repeats}`; {os.cpu_count()} logical CPUs, load average at start {results['load_start']}, "
        f"at end {results['load_end']}. Configs: {args.configs} drawn from `search_spaces/mlp.yaml` (seed 1), "
        f"{args.epochs} epochs each, on demo:digits.",
        "",
        "## 1. Data: once per worker",
        "",
        f"One `load_dataset('demo:digits')` (read, split, fit the preprocessing) takes {data_s:.2f} s; automl loads "
        f"once per worker, so reloading per trial would add {data_s:.2f} s to every trial "
        f"({100 * data_s / (base_fit / n):.0f} % of a mean fit here). **Kept.**",
        "",
        f"## 2. MLflow metrics of one trial ({args.epochs} epochs x {N_METRICS} metrics, sqlite, median of "
        f"{args.repeats})",
        "",
        "| way | ms per trial |",
        "|---|---:|",
    ]
    lines += [f"| {way} | {ms:.1f} |" for way, ms in mlflow_ms.items()]
    lines += [
        "",
        "automl logs one `log_batch` per trial, in its `finish_trial` (the epochs stay in Optuna's intermediate "
        "values, written as they happen, for pruning and for resume). **Kept.**",
        "",
        f"## 3-5. Training policies ({n // 2} configs x 2 passes, the second in reverse order; a fresh process each)",
        "",
        "| policy | Σfit s (both passes) | vs first row | outside fit, ms per trial | RSS at end MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for policy in POLICIES:
        row = by[policy]
        fit, out = sum(row["fit_s"]), sum(row["outside_s"])
        lines.append(
            f"| {what[policy]} | {fit:.1f} | {fit / base_fit:.2f}x | {1000 * out / n:.0f} | {row['rss_mb']:.0f} |"
        )
    lines += [
        "",
        "Each row below the first changes one thing from it; automl's own training loop is row 2.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--policy", choices=POLICIES, help=argparse.SUPPRESS)
    parser.add_argument("--configs-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    quiet_libraries()
    if args.policy:
        configs = json.loads(args.configs_file.read_text())
        print(json.dumps(run_policy(args.policy, configs, args.epochs)))
        return
    load_start = [round(x, 2) for x in os.getloadavg()]
    configs = sample_configs(args.configs, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "configs.json"
        path.write_text(json.dumps(configs))
        # two passes, the second in reverse order, so a slow start or a busy minute does not land on one policy
        passes = [[_policy_in_subprocess(p, path, args.epochs) for p in order] for order in (POLICIES, POLICIES[::-1])]
        policies = [_merge([row for rows in passes for row in rows if row["policy"] == p]) for p in POLICIES]
    results = {
        "data_load_s": data_load_seconds(),
        "mlflow_ms_per_trial": mlflow_logging(args.repeats, args.epochs),
        "policies": policies,
        "configs": configs,
        "load_start": load_start,
        "load_end": [round(x, 2) for x in os.getloadavg()],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "levers.json").write_text(json.dumps(results, indent=1))
    text = _write(results, args)
    (args.out / "levers.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
