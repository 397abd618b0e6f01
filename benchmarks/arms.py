"""What each child process runs: the three overhead arms, and the five methods of the quality run.

An overhead arm has ``setup()``, ``run(gate)`` and ``finish()``; ``gate(i)`` is called before trial ``i`` and may
block (the parent interleaves the arms in blocks of trials), so the worker excludes that wait from the wall time.
Library imports stay inside the functions: the worker imports what its arm needs before its clock starts.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from automl.record import read_trial
from benchmarks.common import DATA, DATA_SEED, FAMILY, FIT_LOG_ENV, load_data, test_accuracy

Gate = Callable[[int], None]
ARMS = ("automl", "automl_inprocess", "loop", "keras_tuner")
METHODS = ("automl", "kt_random", "kt_bayes", "kt_hyperband", "optuna_tpe")
# automl with another pruner than its default (median): the pruning-defaults lever, `--methods automl,automl_asha,...`
PRUNER_VARIANTS = ("automl_asha", "automl_hyperband", "automl_nopruning")
# automl with another sampler than its default (TPE): the sampler-defaults lever
SAMPLER_VARIANTS = ("automl_random", "automl_gp", "automl_qmc")
VARIANTS = PRUNER_VARIANTS + SAMPLER_VARIANTS

# what each arm/method imports before its clock starts (a search pays these once per process, not per search)
IMPORTS = {
    "automl": ["keras", "optuna", "mlflow", "automl.runner", "automl.objective", "automl.tracking", "automl.export"],
    "loop": ["keras", "optuna", "mlflow", "benchmarks.loop"],
    "keras_tuner": ["keras", "keras_tuner", "benchmarks.kt"],
    "kt_random": ["keras", "keras_tuner", "benchmarks.kt"],
    "kt_bayes": ["keras", "keras_tuner", "benchmarks.kt"],
    "kt_hyperband": ["keras", "keras_tuner", "benchmarks.kt"],
    "optuna_tpe": ["keras", "optuna", "mlflow", "benchmarks.loop"],
}
IMPORTS.update({variant: IMPORTS["automl"] for variant in (*VARIANTS, "automl_inprocess")})


def _blocks(n: int, block: int) -> list[int]:
    return [min(block, n - start) for start in range(0, n, block)]


class AutomlArm:
    """automl with full MLflow logging: ``prepare`` a session, enqueue the configs, ``run_trials``, ``finalize``.

    This arm runs the default path (each trial in a trial process); ``InProcessAutomlArm`` runs ``--isolation none``.
    """

    isolation = "process"

    def __init__(self, configs: list[dict[str, Any]], epochs: int, workdir: Path, block: int) -> None:
        self.configs, self.epochs, self.workdir, self.block = configs, epochs, workdir, block

    def setup(self) -> None:
        from automl.config import SearchConfig
        from automl.runner import prepare

        if self.isolation == "process":
            self._probe_trial_processes()
        config = SearchConfig(
            data=DATA,
            family=FAMILY,
            trials=len(self.configs),
            epochs=self.epochs,
            seed=DATA_SEED,
            sampler="tpe",
            pruner="none",
            start=False,  # the enqueued configs only, as in the other arms: not the space's starting points
            home=str(self.workdir / "home"),
            study="bench-overhead",
            isolation=self.isolation,
        )
        self.session = prepare(config)
        for params in self.configs:
            self.session.study.enqueue_trial(params)

    def run(self, gate: Gate) -> None:
        """One ``run_trials`` for every config, as a search runs: the trial process lives across the blocks (as it
        does for a user), and the arm waits for its next turn between two trials, in the progress callback."""
        from automl.runner import run_trials

        total = len(self.configs)
        starts = set(itertools.accumulate(_blocks(total, self.block)))

        class BlockGate:
            def on_start(self, *args: Any) -> None:
                pass

            def on_progress(self, done: int, best: float | None, last: str) -> None:
                if done in starts and done < total:
                    gate(done)

            def on_finalize(self, message: str) -> None:
                pass

        gate(0)
        run_trials(self.session, total, progress=BlockGate())

    def finish(self) -> dict[str, Any]:
        from automl.runner import finalize

        result = finalize(self.session, None)
        trials = self.session.study.get_trials(deepcopy=False)
        info: dict[str, Any] = {
            "test_accuracy": result.test_metrics.get("test_accuracy"),
            "values": [t.value for t in trials],
            "states": {k: v for k, v in result.states.items() if v},
            "params_match": [dict(t.params) for t in trials] == self.configs,
        }
        if self.isolation == "process":  # fit ran in the trial processes, timed there by the same wrapper
            lines = self.fit_log.read_text(encoding="utf-8").splitlines() if self.fit_log.exists() else []
            info["fits"] = [json.loads(line) for line in lines]
        return info

    def _probe_trial_processes(self) -> None:
        """Time ``fit`` in the trial processes too: their forkserver preloads ``benchmarks.fit_probe``."""
        import os

        from automl.execution import pool

        self.fit_log = self.workdir / "trial-process-fits.jsonl"
        self.fit_log.parent.mkdir(parents=True, exist_ok=True)
        self.fit_log.unlink(missing_ok=True)
        os.environ[FIT_LOG_ENV] = str(self.fit_log)
        pool._context().set_forkserver_preload([pool.PRELOAD, "benchmarks.fit_probe"])


class InProcessAutomlArm(AutomlArm):
    """automl with ``--isolation none``: every trial fits in this process."""

    isolation = "none"


class LoopArm:
    """The hand-written Optuna + MLflow loop (``benchmarks/loop.py``) with the configs enqueued."""

    def __init__(self, configs: list[dict[str, Any]], epochs: int, workdir: Path, block: int) -> None:
        self.configs, self.epochs, self.workdir, self.block = configs, epochs, workdir, block

    def setup(self) -> None:
        from benchmarks.loop import LoopSearch

        self.search = LoopSearch(self.workdir / "loop", load_data(DATA_SEED), self.epochs, DATA_SEED, "bench-loop")
        for params in self.configs:
            self.search.study.enqueue_trial(params)

    def run(self, gate: Gate) -> None:
        done = 0
        for size in _blocks(len(self.configs), self.block):
            gate(done)
            self.search.optimize(n_trials=size)
            done += size

    def finish(self) -> dict[str, Any]:
        accuracy = self.search.finish()
        trials = self.search.study.get_trials(deepcopy=False)
        return {
            "test_accuracy": accuracy,
            "values": [t.value for t in trials],
            "states": _count(t.state.name for t in trials),
            "params_match": [dict(t.params) for t in trials] == self.configs,
        }


class KerasTunerArm:
    """KerasTuner: ``Tuner`` with a RandomSearch oracle that replays the configs; best model tested at the end."""

    def __init__(self, configs: list[dict[str, Any]], epochs: int, workdir: Path, block: int) -> None:
        self.configs, self.epochs, self.workdir, self.block = configs, epochs, workdir, block

    def setup(self) -> None:
        from benchmarks.kt import EnqueuedOracle, MLPHyperModel, ReplayTuner

        self.data = load_data(DATA_SEED)
        self.tuner = ReplayTuner(
            oracle=EnqueuedOracle(self.configs, seed=1),
            hypermodel=MLPHyperModel(self.data.spec),
            directory=str(self.workdir / "kt"),
            project_name="bench-kt",
            overwrite=True,
            seed=DATA_SEED,
        )

    def run(self, gate: Gate) -> None:
        block = self.block

        def gate_blocks(index: int) -> None:
            if index % block == 0 and index < len(self.configs):
                gate(index)

        self.tuner.gate = gate_blocks
        data = self.data
        self.tuner.search(
            data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=self.epochs, verbose=0
        )

    def finish(self) -> dict[str, Any]:
        best = self.tuner.get_best_models(1)[0]
        trials = [self.tuner.oracle.trials[i] for i in self.tuner.oracle.start_order]
        return {
            "test_accuracy": test_accuracy(best, self.data),
            "values": [t.score for t in trials],
            "states": _count(str(t.status) for t in trials),
            "params_match": [dict(t.hyperparameters.values) for t in trials] == self.configs,
        }


OVERHEAD_ARMS = {
    "automl": AutomlArm,
    "automl_inprocess": InProcessAutomlArm,
    "loop": LoopArm,
    "keras_tuner": KerasTunerArm,
}


def _count(names: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return counts


# ---- quality at an equal wall-clock budget ------------------------------------------------------------------


def quality_run(method: str, seed: int, budget_s: float, epochs: int, workdir: Path) -> dict[str, Any]:
    """One search of ``budget_s`` seconds; ``finished`` holds (seconds since the call, value or None) per trial."""
    import keras

    keras.utils.clear_session()
    workdir.mkdir(parents=True, exist_ok=True)
    runner = {"optuna_tpe": _quality_loop}.get(method, _quality_automl if method.startswith("automl") else _quality_kt)
    return runner(method, seed, budget_s, epochs, workdir)


def _quality_automl(method: str, seed: int, budget_s: float, epochs: int, workdir: Path) -> dict[str, Any]:
    import optuna

    import automl

    study_name = f"quality-{seed}"
    home = workdir / "home"
    wall_start, start = time.time(), time.perf_counter()
    pruner = {"automl_asha": "asha", "automl_hyperband": "hyperband", "automl_nopruning": "none"}.get(method, "median")
    sampler = {"automl_random": "random", "automl_gp": "gp", "automl_qmc": "qmc"}.get(method, "tpe")
    result = automl.search(
        DATA,
        FAMILY,
        trials=100_000,
        timeout=budget_s,
        epochs=epochs,
        seed=seed,
        home=str(home),
        study=study_name,
        pruner=pruner,
        sampler=sampler,
    )
    total_s = time.perf_counter() - start
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{home / 'optuna.db'}")
    trials = study.get_trials(deepcopy=False)
    finished = sorted(
        (t.datetime_complete.timestamp() - wall_start, t.value if t.state.name == "COMPLETE" else None)
        for t in trials
        if t.datetime_complete is not None
    )
    starts = [t.datetime_start.timestamp() - wall_start for t in trials if t.datetime_start is not None]
    timed = [t for t in trials if read_trial(t).fit_seconds is not None]
    return {
        "fit_s": sum(float(read_trial(t).fit_seconds) for t in timed),
        "fits": len(timed),
        "epochs_trained": sum(len(t.intermediate_values) for t in timed),
        "finished": finished,
        "first_trial_at": min(starts) if starts else None,
        "search_s": max((f[0] for f in finished), default=total_s),
        "total_s": total_s,
        "test_accuracy": result.test_metrics.get("test_accuracy"),
        "states": _count(t.state.name for t in trials),
    }


def _quality_loop(method: str, seed: int, budget_s: float, epochs: int, workdir: Path) -> dict[str, Any]:
    from benchmarks.loop import LoopSearch

    start = time.perf_counter()
    search = LoopSearch(workdir / "loop", load_data(seed), epochs, seed, f"quality-{seed}")
    first_trial_at = time.perf_counter() - start
    search.optimize(timeout=max(0.0, budget_s - first_trial_at))
    search_s = time.perf_counter() - start
    accuracy = search.finish()
    return {
        "finished": [(t - start, value) for t, value in search.finished],
        "first_trial_at": first_trial_at,
        "search_s": search_s,
        "total_s": time.perf_counter() - start,
        "test_accuracy": accuracy,
        "states": _count(t.state.name for t in search.study.get_trials(deepcopy=False)),
    }


def _quality_kt(method: str, seed: int, budget_s: float, epochs: int, workdir: Path) -> dict[str, Any]:
    from benchmarks.kt import make_tuner

    start = time.perf_counter()
    data = load_data(seed)
    tuner = make_tuner(method, data.spec, seed, epochs, str(workdir / "kt"))
    tuner.deadline = start + budget_s
    first_trial_at = time.perf_counter() - start
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=epochs, verbose=0)
    search_s = time.perf_counter() - start
    best = tuner.get_best_models(1)
    accuracy = test_accuracy(best[0], data) if best else None
    return {
        "finished": [(t - start, value) for t, value in tuner.finished],
        "first_trial_at": first_trial_at,
        "search_s": search_s,
        "total_s": time.perf_counter() - start,
        "test_accuracy": accuracy,
        "states": _count(str(t.status) for t in tuner.oracle.trials.values()),
    }
