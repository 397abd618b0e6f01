"""The package type-checks: ``mypy automl cli`` under the ``[tool.mypy]`` settings of pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_passes_on_automl_and_cli() -> None:
    # the cache (.mypy_cache at the root) makes a rerun take about a second; a cold run about 10-20 s
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "automl", "cli"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"mypy failed:\n{result.stdout}{result.stderr}"
