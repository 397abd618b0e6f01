"""Helpers for the loader tests: the CLI in-process, and small image folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


@pytest.fixture
def cli_error(tmp_path: Path) -> Callable[..., str]:
    """Run ``automl ARGS`` in-process and expect a user error: exit 2 and one line on stderr, which is returned."""

    def run(*args: str) -> str:
        result = runner.invoke(app, [*args, "--home", str(tmp_path / "store")])
        assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
        line = result.stderr.strip()
        assert line.startswith("automl: error: ") and "\n" not in line, line
        assert "Traceback" not in result.output
        return line

    return run


def write_images(folder: Path, labels: dict[str, int], size: tuple[int, int] = (10, 12), mode: str = "RGB") -> None:
    """``labels[name]`` random PNG images under ``folder/name``; each class has its own mean brightness."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, (name, count) in enumerate(labels.items()):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            shape = (*size, 3) if mode == "RGB" else size
            pixels = np.clip(rng.normal(60 + 80 * k, 20, size=shape), 0, 255).astype("uint8")
            Image.fromarray(pixels, mode=mode).save(folder / name / f"{i}.png")


@pytest.fixture
def make_images() -> Callable[..., None]:
    """``write_images`` as a fixture, so test modules need not import this conftest."""
    return write_images


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Three classes (cat, dog, owl) of 8 RGB images, 10x12 pixels."""
    folder = tmp_path / "pets"
    write_images(folder, {"cat": 8, "dog": 8, "owl": 8})
    return folder
