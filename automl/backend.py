"""Backend set-up for a worker process: CPU threads, GPU memory growth, mixed precision."""

from __future__ import annotations

import os
import subprocess

THREADS_ENV = "AUTOML_THREADS"


def gpu_count() -> int:
    """GPUs visible to this process, without initializing a backend (nvidia-smi, else 0)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    count = sum(line.startswith("GPU ") for line in out.stdout.splitlines())
    return min(count, len(visible.split(","))) if visible else count


def configured_threads() -> int | None:
    """The CPU threads a user (or ``automl search --workers``, for each worker) asked for: ``AUTOML_THREADS``."""
    return int(os.environ.get(THREADS_ENV, "0") or 0) or None


def configure(threads: int | None = None, mixed_precision: bool = False) -> None:
    """Call before the first op: thread pools (TF; None: the backend's default), GPU memory growth (TF), mixed
    precision (any). A trial process gets its threads from its job, never from the environment it inherited."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            if threads:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(max(1, threads // 2))
            for gpu in tf.config.list_physical_devices("GPU"):
                tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialized: the settings stay as they were
            pass
    if mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")


def intra_op_threads() -> int | None:
    """The CPU threads TensorFlow runs one op with in this process (0: its default, every core); None on other
    backends. Read off the process that trained a trial, so a record shows what the setting became."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return int(tf.config.threading.get_intra_op_parallelism_threads())


def enable_determinism() -> None:
    """Deterministic kernels under TensorFlow (a process-wide switch; it can slow training on GPUs)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
