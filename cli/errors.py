"""Turn user mistakes into one line on stderr and exit code 2; anything else is a bug with a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from automl.errors import AutoMLError

P = ParamSpec("P")
R = TypeVar("R")
USER_ERROR = 2
INTERRUPTED = 130


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command: ``AutoMLError`` -> ``automl: error: ...`` and exit 2."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except AutoMLError as exc:
            message = " ".join(str(exc).split())
            print(f"automl: error: {message}", file=sys.stderr)
            raise typer.Exit(USER_ERROR) from None
        except KeyboardInterrupt:
            print("automl: interrupted; the running trial was recorded as failed (resume to carry on)", file=sys.stderr)
            raise typer.Exit(INTERRUPTED) from None

    return wrapper
