"""The generative families' custom training is portable: their tests pass again under KERAS_BACKEND=jax."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def test_generative_family_tests_pass_on_jax() -> None:
    if importlib.util.find_spec("jax") is None:
        if os.environ.get("CI"):
            pytest.fail("jax is not installed (the dev extra installs it)")
        pytest.skip("jax is not installed: pip install 'automl[jax]'")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    # the CLI searches and the objective lookup are backend-independent plumbing, already covered; this file would
    # recurse
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(HERE),
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            "-k",
            "not cli and not on_jax and not chosen_family",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=HERE.parent.parent,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout.splitlines()[-1]
