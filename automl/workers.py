"""Local worker processes on one Optuna study (Optuna's own distributed mode), and reaping dead trials."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import optuna

from automl.backend import THREADS_ENV, configured_threads, gpu_count
from automl.record import read_trial, write_stored_trial
from automl.study import enqueue_retry

logger = logging.getLogger(__name__)
MAX_RETRIES = 2


def worker_id() -> str:
    """Who runs a trial: ``host:pid``, plus the thread when one process drives several trial slots."""
    import threading

    thread = threading.current_thread()
    suffix = "" if thread is threading.main_thread() else f"/{thread.name}"
    return f"{socket.gethostname()}:{os.getpid()}{suffix}"


def slot_devices(slots: int) -> tuple[str | None, ...]:
    """The device of each trial slot of one search process: GPUs round-robin (K per GPU), else the CPU."""
    from automl.backend import gpu_count

    gpus = gpu_count()
    return tuple(f"gpu:{i % gpus}" if gpus else None for i in range(slots))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_trials(study: optuna.Study, kill_run: Callable[[str, str], None]) -> list[int]:
    """Fail RUNNING trials whose worker process on this host is gone; retry each (at most twice).

    Trials from other hosts are left to Optuna's heartbeat (server databases; SQLite is one machine's) after its
    grace period.
    """
    host = socket.gethostname()
    reaped = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        attrs = read_trial(trial)
        owner = str(attrs.worker or "")
        owner_host, _, pid_text = owner.split("/", 1)[0].rpartition(":")  # host:pid[/slot thread]
        if owner_host != host or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid() or _alive(pid):
            continue
        try:
            write_stored_trial(study, trial, error=f"worker {owner} died while running it")
            study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        except RuntimeError:  # finished meanwhile (UpdateFinishedTrialError is a RuntimeError)
            continue
        run_id = attrs.mlflow_run_id
        if run_id:
            kill_run(str(run_id), f"worker {owner} died while running it")
        retries = int(attrs.retries or 0)
        if retries < MAX_RETRIES and trial.params:
            enqueue_retry(study, trial, retries + 1)
        reaped.append(trial.number)
    if reaped:
        logger.warning("marked trials %s of dead workers as failed and queued them again", reaped)
    return reaped


def threads_per_worker(workers: int) -> int | None:
    """CPU threads for each of ``workers`` local trial processes on the CPU: ``AUTOML_THREADS`` when the user set
    it, else the cores split between them; None for one worker (the backend's default, every core)."""
    configured = configured_threads()
    if configured or workers <= 1:
        return configured
    return max(1, (os.cpu_count() or 1) // workers)


def gpu_env(index: int, gpus: int, trials_per_gpu: int) -> dict[str, str]:
    """The environment of worker ``index``: its GPU (round-robin) and, when shared, its memory share."""
    env = {"CUDA_VISIBLE_DEVICES": str(index % gpus)}
    if trials_per_gpu > 1:
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{0.9 / trials_per_gpu:.3f}"
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    return env


def split(total: int, parts: int) -> list[int]:
    """Split ``total`` trials over ``parts`` workers as evenly as possible."""
    base, extra = divmod(total, parts)
    return [base + (i < extra) for i in range(parts)]


def spawn_workers(
    target: Callable[..., None],
    study: str,
    quotas: list[int],
    home: str | None,
    tracking_uri: str,
    storage: str,
    trials_per_gpu: int = 1,
) -> list[Any]:
    """Start one local worker process per quota (``--workers`` with ``--isolation none``); GPUs round-robin,
    else the CPU threads split between them.

    Each one is forked from the forkserver that has imported Keras and calls ``target(env, study, quota, home,
    tracking_uri, storage)``: a library entry point (``runner.local_worker``), not the CLI. With ``trials_per_gpu``
    K > 1, K workers share a GPU: TensorFlow grows its memory on demand and JAX gets a 1/K share of it instead of
    preallocating 75 %.
    """
    from automl.execution import pool

    gpus = gpu_count()
    threads = threads_per_worker(len(quotas))
    context = pool.start_server()
    processes = []
    for index, quota in enumerate(quotas):
        env = gpu_env(index, gpus, trials_per_gpu) if gpus else {THREADS_ENV: str(threads or 0)}
        process = context.Process(
            target=target,
            args=(env, study, quota, home, tracking_uri, storage),
            name=f"automl-worker-{index}",
        )
        process.start()
        processes.append(process)
    return processes


def wait_for(processes: list[Any], on_tick: Callable[[], Any] | None = None) -> list[int]:
    """Wait for every worker; forward Ctrl-C/SIGTERM to them; return their exit codes."""
    try:
        while any(p.is_alive() for p in processes):
            if on_tick is not None:
                on_tick()
            for p in processes:
                p.join(timeout=1.0 / len(processes))
    except KeyboardInterrupt:
        for p in processes:
            if p.is_alive():
                p.terminate()
        for p in processes:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
        raise
    return [int(p.exitcode if p.exitcode is not None else 1) for p in processes]
